"""Execute the notebooks in order with papermill, saving executed copies under runs/ (never in notebooks/).

    python tools/run_notebooks.py                      # the main job on data/ (sample data built if empty)
    python tools/run_notebooks.py --smoke --only 02    # one notebook in smoke mode
    python tools/run_notebooks.py -p epochs=3 -p lr=0.0005 --only 03

Parameters given with -p go to every notebook that declares them (papermill warns about the others).
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ["01_eda", "02_train_mask", "03_train_colorization", "04_train_inpaint", "05_inference_submission"]

# The main job on the sample data: short training runs that show each stage learning; notebook 05 uses the
# shipped weights in weights/ when present (trained on the larger offline corpus, see weights/README.md).
SAMPLE_PARAMS = {
    "02_train_mask": {"epochs": 2, "steps_per_epoch": 6, "compare_losses": False, "val_count": 8},
    "03_train_colorization": {"epochs": 2, "steps_per_epoch": 6, "compare_losses": False, "val_count": 8},
    "04_train_inpaint": {"epochs": 2, "steps_per_epoch": 6, "compare_losses": False, "val_count": 8},
}


def parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def declared_parameters(nb_path: Path) -> set[str]:
    nb = json.loads(nb_path.read_text())
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            src = "".join(cell["source"])
            return {t.id for node in ast.parse(src).body if isinstance(node, ast.Assign) for t in node.targets
                    if isinstance(t, ast.Name)}
    return set()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="data dir (default: $IMAGE_RESTORE_DATA or data/)")
    ap.add_argument("--out", default="runs", help="where executed notebooks go (default: runs/)")
    ap.add_argument("--ckpt-dir", default="checkpoints")
    ap.add_argument("--only", nargs="*", help="notebook number prefixes to run, e.g. 01 05")
    ap.add_argument("--smoke", action="store_true", help="tiny runs (tests); also on when $IMAGE_RESTORE_SMOKE=1")
    ap.add_argument("--full", action="store_true", help="the notebooks' own full-mode defaults, no sample-data shortening")
    ap.add_argument("-p", "--param", action="append", default=[], help="key=value passed to the notebooks")
    args = ap.parse_args(argv)

    import papermill as pm

    import utils

    args.smoke = args.smoke or utils.smoke_default()
    data_dir = utils.resolve_data_dir(args.data_dir)
    utils.ensure_dataset(data_dir, **({"n_train": 12, "n_test": 4} if args.smoke else {}))  # (re)builds sample data
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    ckpt = Path(args.ckpt_dir).resolve()
    extra = {k: parse_value(v) for k, v in (p.split("=", 1) for p in args.param)}
    names = [n for n in NOTEBOOKS if not args.only or any(n.startswith(o) for o in args.only)]
    t_all = time.time()
    for name in names:
        nb = ROOT / "notebooks" / f"{name}.ipynb"
        if not nb.exists():
            print(f"skip {name}: not there yet")
            continue
        declared = declared_parameters(nb)
        params = {"data_dir": str(data_dir), "ckpt_dir": str(ckpt), "smoke": args.smoke, "out_dir": str(out)}
        if not args.smoke and not args.full:
            params.update(SAMPLE_PARAMS.get(name, {}))
        params.update(extra)
        params = {k: v for k, v in params.items() if k in declared}
        t = time.time()
        print(f"== {name} {params}", flush=True)
        # the kernel starts in notebooks/, as under Jupyter Lab, VS Code or Colab (paths resolve from the repository)
        pm.execute_notebook(str(nb), str(out / f"{name}.ipynb"), parameters=params, cwd=str(nb.parent),
                            kernel_name="python3", progress_bar=False, log_output=False)
        print(f"   done in {time.time() - t:.0f} s -> {out / (name + '.ipynb')}", flush=True)
    summary = out / "summary.json"
    if "05_inference_submission" in names and summary.exists():
        s = json.loads(summary.read_text())
        print(f"\nsubmission: {s.get('zip')} (validated: {s.get('validated')})")
        if s.get("score") is not None:
            print("score on the sample test set: {score:.4f}  (ssim {ssim:.4f}, masked ssim {masked_ssim:.4f}, hue {hue:.4f})".format(**s["score"]))
    print(f"total {time.time() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
