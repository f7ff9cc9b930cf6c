"""Competition-scale rehearsal: a 29,603-pair layout built from the offline corpus, and the notebooks run on it.

    python research/rehearse_scale.py build --corpus corpus --out ../rehearsal     # ~4 GB, ~20-40 min
    python research/rehearse_scale.py measure --data ../rehearsal --report ../rehearsal_report

`build` writes the competition's layout: `train_input/` (L, train-style ~140 px near-black squares and circles,
as the competition's train inputs), `train_gt/` (RGB), `test_input/` (100 polygon inputs, the test style, with
`test_gt/` and `test_mask/` for scoring), `train.csv`, `test.csv` (`./train_input/TRAIN_00000.png` paths). The
corpus holds a few hundred distinct crops, so ground truths are reused: a reused ground truth is a hard link (no
extra disk) and every train input is damaged afresh. It reports the disk the layout takes. It resumes: files
already written are kept, and train.csv, written last, marks a complete layout. Keep the layout out of the git
tree.

`measure` runs, with bounded steps, what a user runs on the real data and records: EDA time (notebook 01 at its
defaults), the data loader's images/s by worker count for both training sources (synthetic damage on the ground
truths, and the provided train_input pairs), training images/s per stage (notebooks 02-04, one short epoch each,
and notebook 02 once more with train_source="provided"), inference images/s (notebook 05 on the test inputs),
the peak RSS of every step, and the projected time of one full epoch (the train split) per stage on this
machine. Results go to REPORT/rehearsal.json and REPORT/rehearsal.md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
COMPETITION_TRAIN_PAIRS = 29_603


def disk_bytes(folder: Path) -> int:
    """Bytes on disk under folder, each hard-linked file counted once (as `du` does)."""
    seen, total = set(), 0
    for dirpath, _, files in os.walk(folder):
        for f in files:
            st = os.lstat(os.path.join(dirpath, f))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def build(corpus: Path, out: Path, pairs: int = COMPETITION_TRAIN_PAIRS, n_test: int = 100, seed: int = 0) -> dict:
    """Write the competition-size layout under `out` from the corpus's crops (train and test photos stay apart).

    Resumable: a file already written is kept (every file is written atomically, and pair i's damage is drawn
    from its own seed (seed, i), so a resumed build writes what an uninterrupted one would). train.csv is
    written last and marks a complete layout."""
    import pandas as pd
    from tqdm.auto import tqdm

    import utils
    from utils.data.damage import sample_train_style_damage

    train_gts = sorted((corpus / "train_gt").glob("*.png"))
    test_gts = sorted((corpus / "test_gt").glob("*.png"))
    if not train_gts or not test_gts:
        raise SystemExit(f"{corpus}: no train_gt/ or test_gt/ PNGs; build it first with tools/build_corpus.py {corpus}")
    if out.resolve() == corpus.resolve():
        raise SystemExit(f"{out}: the rehearsal layout must not be written into the corpus")
    if (out / "train.csv").exists():
        raise SystemExit(f"{out}: a complete layout is already there; remove it first")
    t0 = time.time()
    (out / "train_gt").mkdir(parents=True, exist_ok=True)
    (out / "train_input").mkdir(parents=True, exist_ok=True)
    damage_cfg = utils.DamageConfig()
    grays: dict[int, np.ndarray] = {}      # one gray per distinct photo (174 x 256 KB), not per pair
    written = 0
    rows = []
    for i in tqdm(range(pairs), desc="train pairs", mininterval=10):
        k = i % len(train_gts)
        name = f"TRAIN_{i:05d}.png"
        gt_path, in_path = out / "train_gt" / name, out / "train_input" / name
        first = out / "train_gt" / f"TRAIN_{k:05d}.png"
        if not gt_path.exists():
            if i < len(train_gts):
                shutil.copyfile(train_gts[k], gt_path)
            else:
                os.link(first, gt_path)            # a reused ground truth costs no disk
        if not in_path.exists():
            if k not in grays:
                grays[k] = utils.gray_of(utils.read_image(first, "RGB", utils.IMAGE_SIZE))
            dmg = sample_train_style_damage(np.random.default_rng([seed, i]), damage_cfg)
            utils.write_png(in_path, utils.apply_damage(grays[k], dmg))   # every input is damaged afresh
            written += 1
        rows.append({"input_image_path": f"./train_input/{name}", "gt_image_path": f"./train_gt/{name}"})
    test_rows = []
    for i in range(n_test):
        name = f"TEST_{i:03d}.png"
        test_rows.append({"input_image_path": f"./test_input/{name}"})
        if (out / "test_input" / name).exists():
            continue
        rgb = utils.read_image(test_gts[i % len(test_gts)], "RGB", utils.IMAGE_SIZE)
        dmg = utils.sample_damage(np.random.default_rng([seed, 1, i]), utils.DamageConfig())
        utils.write_png(out / "test_gt" / name, rgb)
        utils.write_png(out / "test_mask" / name, dmg.mask.astype(np.uint8) * 255)
        utils.write_png(out / "test_input" / name, utils.apply_damage(utils.gray_of(rgb), dmg))
    pd.DataFrame(test_rows).to_csv(out / "test.csv", index=False)
    pd.DataFrame(rows).to_csv(out / "train.csv", index=False)     # last: marks a complete layout
    info = {"train_pairs": pairs, "test_inputs": n_test, "distinct_ground_truths": min(pairs, len(train_gts)),
            "distinct_test_photos": min(n_test, len(test_gts)), "disk_gb": round(disk_bytes(out) / 1e9, 2),
            "train_input_gb": round(disk_bytes(out / "train_input") / 1e9, 2),
            "inputs_written_this_run": written, "build_minutes_this_run": round((time.time() - t0) / 60, 1)}
    (out / "rehearsal_layout.json").write_text(json.dumps(info, indent=2))
    return info


def peak_rss_mb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


# Runs a command and prints the peak RSS of its process tree: RUSAGE_CHILDREN of a fresh process covers exactly
# that command, its kernel and its DataLoader workers (the largest of them; Linux counts waited-for descendants).
PEAK_WRAPPER = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
                "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
                "sys.exit(r.returncode)")


def loader_rate(dataset, workers: int, batches: int, batch_size: int = 8) -> float:
    """Images/s that a DataLoader delivers (decode, augmentation, damage, resize), after one warm-up batch
    (which pays for starting the workers)."""
    import torch
    from torch.utils.data import DataLoader

    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(0))
    it = iter(loader)
    next(it)
    t = time.time()
    for _ in range(batches):
        next(it)
    rate = batches * batch_size / (time.time() - t)
    del it
    return rate


def cell_seconds(executed_nb: Path, marker: str) -> float:
    """Wall seconds of the executed notebook's code cell whose source contains `marker` (papermill's record)."""
    nb = json.loads(executed_nb.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and marker in "".join(cell["source"]):
            return float(cell["metadata"]["papermill"]["duration"])
    raise KeyError(f"{executed_nb}: no cell containing {marker!r}")


def run_notebook(only: str, data: Path, out: Path, ckpt: Path, params: dict, log: Path) -> dict:
    """One notebook through the project's runner (full mode, so only `params` shorten it), in its own process
    tree: wall time and its peak RSS. The runner's output goes to `log`."""
    cmd = [sys.executable, "-c", PEAK_WRAPPER, sys.executable, str(ROOT / "tools" / "run_notebooks.py"), "--full",
           "--data-dir", str(data), "--out", str(out), "--ckpt-dir", str(ckpt), "--only", only]
    for k, v in params.items():
        cmd += ["-p", f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}"]
    t = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    seconds = time.time() - t
    with open(log, "a") as f:
        f.write(f"$ {' '.join(cmd[3:])}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        raise SystemExit(f"notebook {only} failed (log: {log}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    peak_kb = max(int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_RSS_KB"))
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(peak_kb / 1024)}


def train_rate(ckpt: Path, stage: str) -> dict:
    """Training images/s of a stage's last epoch, as `fit` recorded it in the checkpoint's history (loading
    and the training steps; validation not included)."""
    last = json.loads((ckpt / f"{stage}.json").read_text())["history"][-1]
    return {"train_seconds": last["train_seconds"], "images": last["images"], "images_per_s": last["images_per_s"]}


def measure(data: Path, report: Path, steps: int = 20, batch_size: int = 8, workers=(0, 1, 2),
            loader_batches: int = 12) -> dict:
    import torch

    import utils

    if (report / "checkpoints").exists():
        raise SystemExit(f"{report}: checkpoints from an earlier rehearsal are there (training would resume, not "
                         "run); remove it or pass another --report")
    report.mkdir(parents=True, exist_ok=True)
    ckpt, runs, log = report / "checkpoints", report / "runs", report / "notebooks.log"
    res = {"machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                       "cuda": torch.cuda.is_available(), "torch": torch.__version__,
                       "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
           "settings": {"steps_per_stage": steps, "batch_size": batch_size, "image_size": 256,
                        "loader_batches": loader_batches}}
    layout = data / "rehearsal_layout.json"
    res["layout"] = json.loads(layout.read_text()) if layout.exists() else {"disk_gb": round(disk_bytes(data) / 1e9, 2)}
    t = time.time()
    table = utils.load_train_table(data)
    res["load_train_table_s"] = round(time.time() - t, 2)
    res["train_pairs"] = len(table)
    run = utils.prepare_run(data, "cpu")
    res["train_split"] = len(run["train_paths"])

    rates = {}
    synth, _ = utils.train_val_datasets(run["train_paths"], run["val_paths"][:4], 256, train_source="synthetic")
    provided, _ = utils.train_val_datasets(run["train_paths"], run["val_paths"][:4], 256, train_source="provided",
                                 train_table=run["train_table"])
    for name, ds in (("synthetic", synth), ("provided", provided)):
        for w in workers:
            rates[f"{name}, {w} workers"] = round(loader_rate(ds, w, loader_batches, batch_size), 1)
            print(f"data loader, {name}, {w} workers: {rates[f'{name}, {w} workers']} images/s", flush=True)
    res["loader_images_per_s"] = rates
    res["measuring_process_peak_rss_mb"] = round(peak_rss_mb())

    short = {"epochs": 1, "steps_per_epoch": steps, "batch_size": batch_size, "compare_losses": False,
             "val_count": 8, "num_workers": 1}
    nbs = res["notebooks"] = {}
    nbs["01 EDA"] = run_notebook("01", data, runs, ckpt, {}, log)
    print("01", nbs["01 EDA"], flush=True)
    for nb, stage in (("02", "mask"), ("03", "color"), ("04", "inpaint")):
        nbs[f"{nb} {stage}"] = {**run_notebook(nb, data, runs, ckpt, short, log), **train_rate(ckpt, stage)}
        print(nb, nbs[f"{nb} {stage}"], flush=True)
    runs_p = report / "runs_provided"
    nbs["02 mask, provided pairs"] = {
        **run_notebook("02", data, runs_p, report / "checkpoints_provided", {**short, "train_source": "provided"}, log),
        **train_rate(report / "checkpoints_provided", "mask")}
    print("02 provided", nbs["02 mask, provided pairs"], flush=True)
    weights = utils.find_weights(ROOT / "weights", ckpt)
    nbs["05 inference"] = run_notebook("05", data, runs, ckpt, {
        "weights": str(weights), "submission_zip": str(report / "submission.zip"), "png_dir": str(report / "png"),
        "out_dir": str(runs)}, log)
    n_test = len(utils.load_test_table(data))
    restore_s = cell_seconds(runs / "05_inference_submission.ipynb", "utils.make_submission(")
    shown = weights.relative_to(ROOT) if weights.is_relative_to(ROOT) else weights.name    # no machine paths
    nbs["05 inference"].update({"weights": str(shown), "test_images": n_test, "restore_seconds": round(restore_s, 1),
                                "images_per_s": round(n_test / restore_s, 2)})
    print("05", nbs["05 inference"], flush=True)
    epoch = res["train_split"]
    res["projected_epoch_hours"] = {
        f"{k} ({epoch} images)": round(epoch / v["images_per_s"] / 3600, 1)
        for k, v in nbs.items() if k[:2] in ("02", "03", "04") and v.get("images_per_s")}
    res["peak_rss_mb"] = max(v["peak_rss_mb"] for v in nbs.values())
    (report / "rehearsal.json").write_text(json.dumps(res, indent=2, default=str))
    (report / "rehearsal.md").write_text(markdown(res))
    return res


def markdown(res: dict) -> str:
    lay, m = res["layout"], res["machine"]
    lines = [f"# Scale rehearsal: {res['train_pairs']} train pairs, {m['cpus']} CPUs, torch {m['torch']}, "
             f"CUDA {m['cuda']}", "",
             f"Layout: {lay.get('disk_gb')} GB on disk ({lay.get('train_input_gb', '?')} GB of fresh train inputs; "
             f"{lay.get('distinct_ground_truths', '?')} distinct ground truths, the rest hard links). "
             f"Reading train.csv and checking that all {2 * res['train_pairs']} files exist: "
             f"{res['load_train_table_s']} s. Train split: {res['train_split']} photos.", "",
             f"Settings: {res['settings']}; load average at start {m['load_average_at_start']}.", "",
             "| data loader (256 px, batch 8) | images/s |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in res["loader_images_per_s"].items()]
    lines += ["", "| notebook | wall s | peak RSS MB | train images/s | projected full epoch (h) |",
              "| --- | --- | --- | --- | --- |"]
    proj = {k.split(" (")[0]: v for k, v in res["projected_epoch_hours"].items()}
    for k, v in res["notebooks"].items():
        rate = v.get("images_per_s", "")
        if k.startswith("05"):
            rate = f"{rate} (inference)"
        lines.append(f"| {k} | {v['seconds']} | {v['peak_rss_mb']} | {rate} | {proj.get(k, '')} |")
    lines += ["", f"Peak RSS of any step: {res['peak_rss_mb']} MB."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the competition-size layout")
    b.add_argument("--corpus", type=Path, required=True, help="a corpus in the competition layout "
                   "(tools/build_corpus.py)")
    b.add_argument("--out", type=Path, required=True, help="where the layout goes (outside the git tree)")
    b.add_argument("--pairs", type=int, default=COMPETITION_TRAIN_PAIRS)
    b.add_argument("--test", type=int, default=100)
    m = sub.add_parser("measure", help="run the notebooks on it with bounded steps and record the numbers")
    m.add_argument("--data", type=Path, required=True, help="the layout that `build` wrote")
    m.add_argument("--report", type=Path, required=True, help="where rehearsal.json/.md and the runs go")
    m.add_argument("--steps", type=int, default=20, help="training steps per stage")
    args = ap.parse_args(argv)
    if args.cmd == "build":
        print(json.dumps(build(args.corpus, args.out, args.pairs, args.test), indent=2))
    else:
        res = measure(args.data, args.report, args.steps)
        print(markdown(res))


if __name__ == "__main__":
    main()
