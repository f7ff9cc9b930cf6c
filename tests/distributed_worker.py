"""Run by tests/test_distributed.py in a fresh Python: two CPU processes (gloo) started by
accelerate.notebook_launcher, as utils.distributed.launch starts them, each training a small mask stage with
utils.fit(..., accelerator=...) on a data set that records the indices it serves. Every rank writes what it
saw and what it ended with to OUT: rank<r>.json (indices served per epoch, history) and rank<r>.safetensors
(its networks' state dicts, buffers included).

    python tests/distributed_worker.py '{"data": ..., "ckpt": ..., "out": ..., "epochs": 5}'
"""
import json
import os
import sys

from torch.utils.data import Dataset


class Recording(Dataset):
    """A data set that records, per epoch, the indices it is asked for (num_workers=0: in the rank's process)."""

    def __init__(self, base):
        self.base, self.epoch, self.seen = base, 0, {}

    def __len__(self):
        return len(self.base)

    def set_epoch(self, epoch):
        self.epoch = epoch
        self.base.set_epoch(epoch)

    def __getitem__(self, idx):
        self.seen.setdefault(self.epoch, []).append(int(idx))
        return self.base[idx]


def rank_main(cfg):
    import torch
    from accelerate import Accelerator
    from safetensors.torch import save_file

    import utils
    from utils.training.ranks import prepare_stage

    acc = Accelerator(cpu=True)
    torch.manual_seed(0)
    stage = utils.MaskStage(lr=3e-3, image_size=64, pretrained="none")
    gts = list(utils.load_train_table(cfg["data"])["gt_image_path"])[:2]
    # 2 photos x 2 repeats, fixed damage: the same 4 items every epoch, 2 per rank at batch size 2
    base = utils.SyntheticDamageDataset(gts, size=64, fixed=True, seed=3, repeats=2)
    ds = Recording(base)
    prepare_stage(stage, acc)
    history = utils.fit(stage, ds, cfg["epochs"], cfg["ckpt"], batch_size=2, num_workers=0, seed=1,
                        progress=False, accelerator=acc)
    r = acc.process_index
    state = {f"{stem}.{k}": v.detach().cpu().contiguous() for stem, (m, _) in stage.nets.items()
             for k, v in m.state_dict().items()}
    save_file(state, os.path.join(cfg["out"], f"rank{r}.safetensors"))
    with open(os.path.join(cfg["out"], f"rank{r}.json"), "w") as f:
        json.dump({"rank": r, "world": acc.num_processes, "seen": ds.seen, "history": history}, f)


if __name__ == "__main__":
    from accelerate import notebook_launcher

    from utils.training.distributed import free_port

    cfg = json.loads(sys.argv[1])
    os.makedirs(cfg["out"], exist_ok=True)
    notebook_launcher(rank_main, args=(cfg,), num_processes=2, use_port=str(free_port()), mixed_precision="no")
