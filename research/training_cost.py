"""What a competition run costs: FLOPs per training image of each stage at notebooks 02-04's settings, the hours per
epoch of the competition's 29,603 pairs that they imply on a T4, two T4s, a P100, an A100 and an H100, and (with
--data) the data loader alone in images/s on this machine, against the images/s each card would train at.

    python research/training_cost.py                                   # FLOPs and the cost table (markdown)
    python research/training_cost.py --data data --json runs/cost.json --md runs/cost.md   # and the loader

FLOPs: torch.utils.flop_counter.FlopCounterMode around one training step of each stage (forward and backward; the
convolutions and matrix products, which is where the work is: the optimizer's elementwise update, the norms and
activations and the inpainter's FFTs are not counted; a convolution's backward pass counted as twice its forward,
`conv_backward_flops`) at the notebooks' competition settings (256 px, batch 8,
EfficientNet-Lite0 encoders, each stage's measured default loss, the Fourier inpainter), in fp32 on the CPU: the
count does not depend on the precision. The same step is run once more to count the ATen operations it dispatches
(forward, backward and a foreach AdamW step, as on CUDA): on a GPU each is a kernel launch that costs the CPU a few
microseconds whatever its size.

The cost model, per card: a step takes the longer of (FLOPs / (peak x utilisation)) and (operations x overhead per
operation); PEAK_TFLOPS, UTILISATION and OP_OVERHEAD_US below are the assumptions, stated in docs/training.md. Two T4s
are counted as twice one (DistributedDataParallel: each trains half of every epoch).

The loader (--data, a dataset in the competition's layout): each stage's training data set as notebooks 02-04
build it (utils.distributed.build) through fit's loader (utils.loop.make_loader), batch 8 at 256 px, for each
worker count in --workers, in images/s; and, without workers, images per CPU-second of the process (how much one
core delivers, whatever else the machine runs), from which the cores a card's machine would need follow.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

COMPETITION_TRAIN_PAIRS = 29_603
BATCH, SIZE = 8, 256        # notebooks 02-04's batch_size and image_size
# dense peak TFLOPS per card in the precision that amp='auto' picks on it (utils.runtime.choose_precision); vendor
# data sheets: T4 65 (fp16 tensor cores), P100 PCIe 9.3 (fp32; no tensor cores, fp32 by the rule), A100 312
# (bf16 tensor cores), H100 SXM 989 (bf16 tensor cores, dense)
CARDS = {
    "T4": {"precision": "fp16", "peak_tflops": 65.0, "gpus": 1, "where": "Colab, Kaggle"},
    "2x T4": {"precision": "fp16", "peak_tflops": 65.0, "gpus": 2, "where": "Kaggle"},
    "P100": {"precision": "fp32", "peak_tflops": 9.3, "gpus": 1, "where": "Kaggle"},
    "A100": {"precision": "bf16", "peak_tflops": 312.0, "gpus": 1, "where": "Colab Pro, cloud"},
    "H100": {"precision": "bf16", "peak_tflops": 989.0, "gpus": 1, "where": "cloud"},
}
# the share of that peak these nets reach: depthwise-separable encoders and a batch of 8 keep tensor cores mostly
# idle (NVIDIA's published EfficientNet-B0 training, 1301 images/s on a V100 with AMP at batch 256 and 224 px,
# is 2.4 % of its 125 TFLOPS tensor peak, and 9.8 % of its fp32 peak in fp32); the UNet decoders' dense 3x3
# convolutions use them better
UTILISATION = {"fp16": 0.05, "bf16": 0.05, "fp32": 0.10}
OP_OVERHEAD_US = 10.0        # CPU time per launched operation in eager PyTorch (dispatch + kernel launch)


def stage_step(name: str):
    """(stage, batch): a stage at the notebooks' competition settings, fp32 on the CPU, and a batch of random
    inputs of the shapes its data set gives."""
    import utils
    from utils.training.losses import MEASURED_DEFAULT

    torch.manual_seed(0)
    common = {"image_size": SIZE, "device": "cpu", "amp": "off", "loss": MEASURED_DEFAULT[name]}
    gray, mask = torch.rand(BATCH, 1, SIZE, SIZE), (torch.rand(BATCH, 1, SIZE, SIZE) > 0.9).float()
    if name == "mask":
        return utils.MaskStage(pretrained="none", **common), {"gray": gray, "mask": mask}
    if name == "color":
        return (utils.ColorStage(pretrained="none", **common),
                {"gray": gray, "mask": mask, "rgb": torch.rand(BATCH, 3, SIZE, SIZE)})
    return utils.InpaintStage(**common), {"image": gray, "mask": mask, "target": torch.rand(BATCH, 1, SIZE, SIZE)}


def count_operations(fn) -> int:
    """ATen operations that `fn()` dispatches (each a kernel launch on a GPU, views aside)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.n += 1
            return func(*args, **(kwargs or {}))

    with Count():
        fn()
    return Count.n


def conv_backward_flops(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                        _output_padding, _groups, output_mask, out_shape=None, **kwargs) -> int:
    """FLOPs of a convolution's backward pass: the input gradient and the weight gradient each take as many
    multiply-adds as the forward convolution. (torch's own formula derives the weight gradient's count from
    transposed shapes that lose the group division, so it counts a depthwise convolution's weight gradient once
    per channel: 12x the forward pass for the mask net instead of 2x.)"""
    from torch.utils.flop_counter import conv_flop_count

    forward = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def measure_stage(name: str) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    stage, batch = stage_step(name)
    for opt in stage.opts.values():          # the optimizer's update as CUDA runs it (one foreach kernel per op)
        for group in opt.param_groups:
            group["foreach"] = True
    stage.train_mode()
    stage.train_step(batch)                  # warm-up (lazy initialisations)
    with FlopCounterMode(display=False, custom_mapping={torch.ops.aten.convolution_backward: conv_backward_flops}) \
            as counter:
        stage.train_step(batch)
    ops = count_operations(lambda: stage.train_step(batch))
    params = sum(p.numel() for m, _ in stage.nets.values() for p in m.parameters())
    return {"stage": name, "loss": stage.loss.kind, "gflops_per_image": counter.get_total_flops() / BATCH / 1e9,
            "operations_per_step": ops, "parameters_m": params / 1e6}


def card_rates(stage: dict, card: dict) -> dict:
    """Training images/s of one stage on one card, by the cost model (module docstring)."""
    flop_s = BATCH * stage["gflops_per_image"] * 1e9 / (card["peak_tflops"] * 1e12 * UTILISATION[card["precision"]])
    overhead_s = stage["operations_per_step"] * OP_OVERHEAD_US * 1e-6
    step_s = max(flop_s, overhead_s)
    rate = card["gpus"] * BATCH / step_s
    return {"images_per_s": rate, "bound": "FLOPs" if flop_s >= overhead_s else "launches",
            "hours_per_epoch": COMPETITION_TRAIN_PAIRS / rate / 3600}


def loader_rates(data: Path, workers=(0, 1, 2), batches: int = 12) -> dict:
    """{stage/source: {"cpu_images_per_s": per CPU-second without workers, "<w> workers": images/s}}."""
    from utils.core.train_config import config_class
    from utils.training.distributed import build
    from utils.training.loop import make_loader

    out = {}
    for name, source in (("mask", "synthetic"), ("mask", "provided"), ("color", "synthetic"), ("inpaint", "synthetic")):
        _, ds, _ = build(config_class(name)(image_size=SIZE, train_source=source, val_count=4, pretrained="none"),
                         "cpu", data)
        row = {}
        for w in workers:
            loader = make_loader(ds, BATCH, w, seed=0, device="cpu")
            it = iter(loader)
            next(it)                       # the workers' start
            wall, cpu = time.time(), time.process_time()
            for _ in range(batches):
                next(it)
            wall, cpu = time.time() - wall, time.process_time() - cpu
            row[f"{w} workers"] = round(batches * BATCH / wall, 1)
            if w == 0:
                row["cpu_images_per_s"] = round(batches * BATCH / cpu, 1)
            del it, loader
        out[f"{name}, {source}"] = row
        print(f"loader {name}, {source}: {row}", flush=True)
    return out


def markdown(res: dict) -> str:
    lines = [f"FLOPs per training image (forward + backward, FlopCounterMode), {SIZE} px, batch {BATCH}:", "",
             "| stage | loss | parameters (M) | GFLOPs per image | ATen operations per step |",
             "| --- | --- | --- | --- | --- |"]
    for s in res["stages"]:
        lines.append(f"| {s['stage']} | {s['loss']} | {s['parameters_m']:.1f} | {s['gflops_per_image']:.1f} | "
                     f"{s['operations_per_step']} |")
    lines += ["", f"Hours per epoch of {COMPETITION_TRAIN_PAIRS:,} pairs, training images/s in brackets (L: bound by "
              "kernel launches, not FLOPs):", "",
              "| card | precision (auto) | peak TFLOPS | utilisation | " + " | ".join(s["stage"] for s in res["stages"])
              + " | all three |", "| --- | --- | --- | --- | " + " | ".join("---" for _ in res["stages"]) + " | --- |"]
    for card, spec in CARDS.items():
        cells, total = [], 0.0
        for s in res["stages"]:
            r = res["cards"][card][s["stage"]]
            total += r["hours_per_epoch"]
            bound = " L" if r["bound"] == "launches" else ""
            cells.append(f"{r['hours_per_epoch']:.3f} ({r['images_per_s']:.0f}{bound})")
        lines.append(f"| {card} | {spec['precision']} | {spec['peak_tflops']:g}"
                     f"{' x 2' if spec['gpus'] == 2 else ''} | {UTILISATION[spec['precision']]:.0%} | "
                     + " | ".join(cells) + f" | {total:.3f} h = {total * 60:.0f} min |")
    if res.get("loader"):
        lines += ["", f"Data loader alone on this machine ({res['machine']['cpu']}, {res['machine']['cores']} cores, "
                  f"load average {res['machine']['load_average']}), batch {BATCH} at {SIZE} px, images/s:", "",
                  "| data set | per CPU-second | " + " | ".join(k for k in next(iter(res["loader"].values()))
                                                           if k != "cpu_images_per_s") + " |"]
        keys = [k for k in next(iter(res["loader"].values())) if k != "cpu_images_per_s"]
        lines.append("| --- | --- | " + " | ".join("---" for _ in keys) + " |")
        for name, row in res["loader"].items():
            lines.append(f"| {name} | {row['cpu_images_per_s']} | " + " | ".join(str(row[k]) for k in keys) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None, help="a dataset (competition layout): also measure the loader")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="loader worker counts to measure")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--md", type=Path, default=None, help="also write the tables here (markdown)")
    args = ap.parse_args(argv)
    import platform

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    res = {"machine": {"cpu": cpu, "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                       else os.cpu_count(), "load_average": [round(x, 1) for x in os.getloadavg()],
                       "torch": torch.__version__},
           "assumptions": {"cards": CARDS, "utilisation": UTILISATION, "op_overhead_us": OP_OVERHEAD_US,
                           "batch": BATCH, "size": SIZE, "pairs": COMPETITION_TRAIN_PAIRS}}
    res["stages"] = [measure_stage(name) for name in ("mask", "color", "inpaint")]
    res["cards"] = {card: {s["stage"]: card_rates(s, spec) for s in res["stages"]} for card, spec in CARDS.items()}
    if args.data is not None:
        res["loader"] = loader_rates(args.data, tuple(args.workers))
    text = markdown(res)
    print(text)
    from utils.core.files import save_json, write_bytes_atomic

    if args.json is not None:
        save_json(args.json, res)
    if args.md is not None:
        write_bytes_atomic(args.md, text.encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
