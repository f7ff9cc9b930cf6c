"""Multi-process training through accelerate (utils.distributed, fit's accelerator hook), on the CPU with two
gloo processes started by accelerate.notebook_launcher (as utils.distributed.launch starts them) and by
`accelerate launch tools/train.py`: each process gets different batches, the loss falls, the saved checkpoint
is the same on every rank, a run resumes from its last epoch."""
import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT
from safetensors.torch import load, load_file

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}


def run_py(args, timeout=150):
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=timeout)
    assert proc.returncode == 0, f"{args[:2]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def two_ranks(sample_data, ckpt, out, epochs):
    cfg = {"data": str(sample_data), "ckpt": str(ckpt), "out": str(out), "epochs": epochs}
    run_py([str(ROOT / "tests" / "distributed_worker.py"), json.dumps(cfg)])
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    states = [load_file(str(out / f"rank{r}.safetensors")) for r in (0, 1)]
    return ranks, states


@pytest.fixture(scope="module")
def runs(sample_data, tmp_path_factory):
    """Five epochs with two processes, then the same run resumed to seven epochs."""
    root = tmp_path_factory.mktemp("dist")
    first = two_ranks(sample_data, root / "ckpt", root / "first", epochs=5)
    saved = {name: (root / "ckpt" / name).read_bytes() for name in ("mask.safetensors", "mask.json")}
    second = two_ranks(sample_data, root / "ckpt", root / "second", epochs=7)
    return {"ckpt": root / "ckpt", "first": first, "second": second, "saved_first": saved}


def test_each_process_gets_different_batches(runs):
    ranks, _ = runs["first"]
    assert [r["world"] for r in ranks] == [2, 2]
    assert sorted(ranks[0]["seen"]) == [str(e) for e in range(5)]
    for epoch in ranks[0]["seen"]:
        a, b = ranks[0]["seen"][epoch], ranks[1]["seen"][epoch]
        assert len(a) == len(b) == 2                     # batch size 2, one step each
        assert not set(a) & set(b), f"epoch {epoch}: both ranks trained on {set(a) & set(b)}"
        assert set(a) | set(b) == {0, 1, 2, 3}           # together: the whole (4-item) epoch
    # the shuffle changes with the epoch, and the record counts the images of both ranks
    assert len({tuple(ranks[0]["seen"][e]) for e in ranks[0]["seen"]}) > 1
    assert all(h["images"] == 4 and h["processes"] == 2 for h in ranks[0]["history"])


def test_loss_falls_on_a_fixed_set(runs):
    history = runs["first"][0][0]["history"]
    losses = [h["train_loss"] for h in history]
    assert losses[-1] < 0.9 * losses[0], losses


def test_checkpoint_is_the_same_on_every_rank(runs):
    ranks, (s0, s1) = runs["first"]
    assert s0.keys() == s1.keys() and any("running_mean" in k for k in s0)
    differ = [k for k in s0 if not torch.equal(s0[k], s1[k])]
    assert not differ, f"{len(differ)} tensors differ between the ranks, e.g. {differ[:3]}"
    saved = load(runs["saved_first"]["mask.safetensors"])          # written by the main process only
    assert saved.keys() == {k.split(".", 1)[1] for k in s0}
    assert all(torch.equal(saved[k], s0[f"mask.{k}"]) for k in saved)
    assert ranks[0]["history"] == ranks[1]["history"]
    assert json.loads(runs["saved_first"]["mask.json"])["history"] == ranks[0]["history"]
    # trained: the weights moved away from their initialisation (same seed, no steps)
    torch.manual_seed(0)
    import utils

    init = utils.MaskStage(lr=3e-3, image_size=64, pretrained="none").net.state_dict()
    assert any(not torch.equal(init[k], saved[k]) for k in saved if saved[k].is_floating_point())


def test_resume_continues_from_the_saved_epoch(runs):
    (first, _), (second, states) = runs["first"], runs["second"]
    for r in (0, 1):
        assert sorted(second[r]["seen"]) == ["5", "6"]        # only the two new epochs were trained
        assert second[r]["history"][:5] == first[r]["history"]
        assert [h["epoch"] for h in second[r]["history"]] == list(range(1, 8))
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    saved = load_file(str(runs["ckpt"] / "mask.safetensors"))
    assert all(torch.equal(saved[k], states[0][f"mask.{k}"]) for k in saved)
    assert json.loads((runs["ckpt"] / "mask.json").read_text())["epoch"] == 7


def test_launch_inpaint_and_accelerate_launch_cli(sample_data, tmp_path):
    """utils.distributed.launch (notebook_launcher) on the two-network GAN stage, then `accelerate launch
    tools/train.py` resuming it for one more epoch on two processes."""
    ckpt = tmp_path / "ckpt"
    fields = dict(epochs=1, steps_per_epoch=1, batch_size=2, num_workers=0, image_size=64, val_count=2,
                  pretrained="none", loss="l1+gan")
    # then, as the notebooks do after launch(): the trained weights loaded into a stage built in this process
    code = ("import json, utils, utils.training.distributed as d; "
            f"config = utils.InpaintConfig(**{fields!r}); "
            f"h = d.launch(config, num_processes=2, data_dir={str(sample_data)!r}, ckpt_dir={str(ckpt)!r}, cpu=True); "
            f"stage, _, val = d.build(config, 'cpu', {str(sample_data)!r}); "
            f"d.load_trained(stage, {str(ckpt)!r}); "
            "from safetensors.torch import load_file; import torch; "
            f"saved = load_file({str(ckpt / 'inpaint.safetensors')!r}); sd = stage.net.state_dict(); "
            "assert all(torch.equal(saved[k], sd[k]) for k in saved), 'weights not loaded'; "
            "assert not any(m.training for m, _ in stage.nets.values()), 'left in train mode'; "
            "print('HISTORY', json.dumps(h)); print('LOADED', json.dumps(val(stage)))")
    proc = run_py(["-c", code])
    history = json.loads(proc.stdout.split("HISTORY", 1)[1].split("LOADED")[0])
    loaded = json.loads(proc.stdout.split("LOADED", 1)[1])
    assert loaded["val_masked_ssim"] == pytest.approx(history[0]["val_masked_ssim"], abs=1e-4)
    assert len(history) == 1 and history[0]["processes"] == 2 and history[0]["images"] == 4
    assert "train_d_loss" in history[0] and "val_masked_ssim" in history[0]
    for stem in ("inpaint", "inpaint_disc"):
        assert (ckpt / f"{stem}.safetensors").is_file() and (ckpt / f"{stem}.json").is_file()
    port = str(__import__("utils.training.distributed", fromlist=["free_port"]).free_port())
    # `accelerate launch --multi_gpu` (torch.distributed.run underneath; --cpu alone would start one process),
    # the script's own --cpu keeps it on the CPU with gloo
    run_py(["-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", port,
            str(ROOT / "tools" / "train.py"), "--stage", "inpaint", "--data-dir", str(sample_data), "--ckpt-dir",
            str(ckpt), "--epochs", "2", "--steps-per-epoch", "1", "--batch-size", "2", "--num-workers", "0",
            "--image-size", "64", "--val-count", "2", "--pretrained", "none", "--loss", "l1+gan", "--cpu"])
    cfg = json.loads((ckpt / "inpaint.json").read_text())
    assert cfg["epoch"] == 2 and cfg["history"][0] == history[0] and cfg["history"][1]["processes"] == 2
    # the launcher and the command line built the same config from the same settings
    from utils import InpaintConfig

    assert cfg["train_config"] == InpaintConfig(**{**fields, "epochs": 2}).to_dict()
