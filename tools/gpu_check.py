"""Check the suite on this machine's GPU and report what it does there (`make gpu-check`; under 10 minutes on one GPU).

    python tools/gpu_check.py [--out research/reports] [--data-dir DIR] [--steps 12]

1. the CUDA tests (tests/test_cuda.py, in their own process, IMAGE_RESTORE_TEST_CUDA=1);
2. a few training steps of each stage at the notebooks' competition settings (256 px, batch 8, each stage's default
   loss and encoder) under amp='auto': the precision the card gets, the training images/s through `utils.fit` (the
   data loader's 'auto' workers and pinned memory included, after a warm-up epoch), the images/s of the training
   step alone on a batch already on the GPU in each precision the card runs (auto, fp16, fp32), and the peak GPU
   memory;
3. restore.py on 100 test-size (512x512) images with the shipped weights, in its own process.

The report goes to OUT/gpu_check_<card>.json and .md (written atomically). Without a GPU it says so in one line
and exits with 1; it also exits with 1 when a CUDA test or a part of the check fails (the report names it).
The data: --data-dir, else a sample dataset built in a temporary folder from the bundled photos.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BATCH, SIZE = 8, 256            # notebooks 02-04's batch_size and image_size
STAGES = ("mask", "color", "inpaint")


def card_info() -> dict:
    import torch

    import utils

    props = torch.cuda.get_device_properties(0)
    return {"name": props.name, "capability": f"{props.major}.{props.minor}",
            "memory_gb": round(props.total_memory / 2**30, 1),
            "gpus": torch.cuda.device_count(), "precision_auto": utils.choose_precision(torch.device("cuda")),
            "torch": torch.__version__, "cuda": torch.version.cuda, "cpu_cores": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity") else os.cpu_count()}


def run_cuda_tests(timeout: int) -> dict:
    env = {**os.environ, "IMAGE_RESTORE_TEST_CUDA": "1", "PYTHONPATH": str(ROOT)}
    t = time.time()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_cuda.py"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    tail = (proc.stdout + proc.stderr).strip().splitlines()
    summary = next((line for line in reversed(tail) if re.search(r"\d+ (passed|failed|error)", line)), tail[-1:] or "")
    return {"ok": proc.returncode == 0, "summary": summary.strip("= "), "seconds": round(time.time() - t, 1),
            "output_tail": "\n".join(tail[-40:]) if proc.returncode else ""}


def step_rate(stage, batch, steps: int) -> float:
    """Images/s of the training step alone, on a batch already on the GPU (after 3 warm-up steps)."""
    import torch

    stage.train_mode()
    for _ in range(3):
        stage.train_step(batch)
    torch.cuda.synchronize()
    t = time.time()
    for _ in range(steps):
        stage.train_step(batch)
    torch.cuda.synchronize()
    return round(steps * BATCH / (time.time() - t), 1)


def check_stage(name: str, data: Path, ckpt: Path, steps: int) -> dict:
    import torch
    from torch.utils.data import DataLoader

    import utils
    from utils.core.train_config import config_class
    from utils.training.distributed import build
    from utils.training.loop import loader_workers

    out = {"stage": name}
    torch.manual_seed(0)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    stage, ds, _ = build(config_class(name)(image_size=SIZE, repeats=8, val_count=4, amp="auto"), "cuda", data)
    out.update(precision=stage.precision, loss=stage.loss.kind, train_items=len(ds),
               loader_workers=loader_workers("cuda"))
    history = utils.fit(stage, ds, 2, ckpt / name, batch_size=BATCH, steps_per_epoch=steps,
                        progress=False)
    last = history[-1]      # the second epoch: cuDNN's algorithm search and the workers' start are behind
    out["fit_images_per_s"] = last["images_per_s"]
    out["overflow_steps"] = last.get("overflow_steps")
    out["skipped_steps"] = last["skipped_steps"]
    out["peak_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    out["micro_batch"] = stage.micro_batch
    batch = {k: v.cuda() if torch.is_tensor(v) else v
             for k, v in next(iter(DataLoader(ds, batch_size=BATCH))).items()}
    rates = {}
    for amp in dict.fromkeys(("auto", "fp16", "off")):
        precision = utils.choose_precision(torch.device("cuda"), amp)
        if precision in rates:
            continue
        torch.manual_seed(0)
        s, _, _ = build(config_class(name)(image_size=SIZE, val_count=4, amp=precision), "cuda", data)
        rates[precision] = step_rate(s, batch, steps)
        del s
    out["step_images_per_s"] = rates
    del stage, batch
    torch.cuda.empty_cache()
    return out


def run_restore(data: Path, tmp: Path, n: int, timeout: int) -> dict:
    """restore.py on n 512x512 test inputs (the sample's test inputs, repeated under n names)."""
    sources = sorted((data / "test_input").glob("*.png"))
    inputs, outputs = tmp / "restore_in", tmp / "restore_out"
    inputs.mkdir()
    for i in range(n):
        shutil.copyfile(sources[i % len(sources)], inputs / f"TEST_{i:03d}.png")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t = time.time()
    proc = subprocess.run([sys.executable, str(ROOT / "restore.py"), str(inputs), str(outputs), "--device", "cuda",
                           "--batch-size", str(BATCH)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    seconds = time.time() - t
    written = len(list(outputs.glob("*.png"))) if outputs.is_dir() else 0
    return {"ok": proc.returncode == 0 and written == n, "images": written, "seconds": round(seconds, 1),
            "images_per_s": round(written / seconds, 2), "note": "wall time of the process: start-up and loading "
            "the weights included", "output_tail": (proc.stdout + proc.stderr)[-2000:] if proc.returncode else ""}


def markdown(r: dict) -> str:
    c = r["card"]
    lines = [f"# GPU check: {c['name']}", "",
             f"Compute capability {c['capability']}, {c['memory_gb']} GB, {c['gpus']} GPU(s), {c['cpu_cores']} CPU "
             f"cores; torch {c['torch']}, CUDA {c['cuda']}. amp='auto' picks **{c['precision_auto']}**. "
             f"{r['seconds']} s in all.", ""]
    t = r.get("cuda_tests", {})
    verdict = "passed" if t.get("ok") else "FAILED"
    lines += [f"CUDA tests (tests/test_cuda.py): {verdict}: {t.get('summary', t.get('error'))}", ""]
    rows = [s for s in r.get("training", []) if "error" not in s]
    if rows:
        precisions = list(dict.fromkeys(p for s in rows for p in s["step_images_per_s"]))
        lines += [f"Training at the notebooks' settings ({SIZE} px, batch {BATCH}), images/s:", "",
                  "| stage | precision (auto) | through fit (loader included) | "
                  + " | ".join(f"step alone, {p}" for p in precisions) + " | peak GPU memory (GB) | fp16 overflows |",
                  "| --- | --- | --- | " + " | ".join("---" for _ in precisions) + " | --- | --- |"]
        for s in rows:
            overflows = "-" if s["overflow_steps"] is None else s["overflow_steps"]
            lines.append(f"| {s['stage']} | {s['precision']} | {s['fit_images_per_s']} | "
                         + " | ".join(str(s["step_images_per_s"].get(p, "")) for p in precisions)
                         + f" | {s['peak_memory_gb']} | {overflows} |")
        lines.append("")
    for s in r.get("training", []):
        if "error" in s:
            lines += [f"Training {s['stage']}: FAILED: {s['error']}", ""]
    rs = r.get("restore", {})
    if "error" in rs or not rs.get("ok"):
        lines += [f"restore.py: FAILED: {rs.get('error') or rs.get('output_tail', '')[-500:]}", ""]
    else:
        lines += [f"restore.py on {rs['images']} images of 512x512: {rs['seconds']} s, {rs['images_per_s']} images/s "
                  f"({rs['note']}).", ""]
    return "\n".join(lines)


def write_report(report: dict, out: Path) -> tuple[Path, Path]:
    from utils.core.files import save_json, write_bytes_atomic

    slug = re.sub(r"[^a-z0-9]+", "-", report["card"]["name"].lower()).strip("-") or "gpu"
    out.mkdir(parents=True, exist_ok=True)
    paths = out / f"gpu_check_{slug}.json", out / f"gpu_check_{slug}.md"
    save_json(paths[0], report)
    write_bytes_atomic(paths[1], markdown(report).encode())
    return paths


def part(fn, *args) -> dict:
    """Run one part of the check; a failure is recorded in the report, not raised."""
    try:
        return fn(*args)
    except Exception as e:        # noqa: BLE001 (each part reports its own failure)
        return {"ok": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-3000:]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "research" / "reports", help="the report's folder")
    ap.add_argument("--data-dir", type=Path, default=None, help="a dataset in the competition layout (default: a "
                    "sample dataset built in a temporary folder)")
    ap.add_argument("--steps", type=int, default=12, help="training steps per stage and epoch")
    ap.add_argument("--images", type=int, default=100, help="images restored by restore.py")
    ap.add_argument("--skip-tests", action="store_true", help="leave out the CUDA tests")
    args = ap.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("gpu-check: no CUDA GPU here (torch.cuda.is_available() is False): run it on a machine with an "
              "NVIDIA GPU and a CUDA build of PyTorch", file=sys.stderr)
        return 1
    import utils

    t0 = time.time()
    report = {"card": card_info(), "settings": {"image_size": SIZE, "batch_size": BATCH, "steps": args.steps}}
    print(f"gpu-check on {report['card']['name']} (capability {report['card']['capability']}, amp auto = "
          f"{report['card']['precision_auto']})", flush=True)
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        tmp = Path(tmp)
        data = args.data_dir
        if data is None:
            data = utils.build_sample_dataset(tmp / "data", n_train=48, n_test=8, seed=0)
        if not args.skip_tests:
            report["cuda_tests"] = part(run_cuda_tests, 300)
            print(f"CUDA tests: {report['cuda_tests'].get('summary') or report['cuda_tests'].get('error')}", flush=True)
        report["training"] = []
        for name in STAGES:
            row = part(check_stage, name, data, tmp / "checkpoints", args.steps)
            row.setdefault("stage", name)
            report["training"].append(row)
            print(f"{name}: {json.dumps({k: v for k, v in row.items() if k != 'traceback'})}", flush=True)
        report["restore"] = part(run_restore, data, tmp, args.images, 240)
        restored = report["restore"]
        print(f"restore.py: {restored.get('images_per_s', restored.get('error'))} images/s", flush=True)
    report["seconds"] = round(time.time() - t0, 1)
    paths = write_report(report, args.out)
    print(f"report: {paths[0]} and {paths[1]}")
    ok = (report.get("cuda_tests", {"ok": True}).get("ok") and report["restore"].get("ok")
          and all("error" not in s for s in report["training"]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
