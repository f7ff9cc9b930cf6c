"""Execute the notebooks in order with papermill, saving executed copies under runs/ (never in notebooks/).

    python tools/run_notebooks.py                      # the main job on data/ (sample data built if empty)
    python tools/run_notebooks.py --smoke --only 02    # one notebook in smoke mode
    python tools/run_notebooks.py -p epochs=3 -p lr=0.0005 --only 03

Parameters given with -p go to every chosen notebook that has them: a notebook's own parameters (its parameters
cell), and for the training notebooks 02-04 the fields of their stage's config (utils.train_config: epochs, lr,
loss, ...), which go into the notebook's `settings` and apply on top of its preset. A name that no chosen notebook
has is an error that lists theirs, and a value that a config refuses (a wrong type, a loss of another stage) is an
error before any work. Paths typed here (--data-dir, --out, --ckpt-dir, and the -p parameters photos,
init_weights, weights, submission_zip, png_dir) are taken from the working directory and handed to the notebooks
as absolute paths. A --data-dir (or $IMAGE_RESTORE_DATA) must hold a dataset (train.csv, test.csv, ...): only the
default data/ of the repository gets the sample dataset built when it holds none.

Which preset the training notebooks 02-04 get (the runner prints which, and why; -p preset=... chooses):
  - on the sample dataset (built from the photos bundled with scikit-image, scikit-learn and matplotlib),
    "sample": short training runs that show each stage learning (2 epochs of 6 steps, each of the sample's 22
    training images damaged anew 3 times an epoch: 8 batches of 8, of which 6 are trained; no loss comparison; 8
    validation images); notebook 05 uses the shipped weights/ (trained on the larger offline corpus,
    weights/README.md);
  - on any other data (yours, the competition's), or with --full, "default": the measured settings; and when 02-04
    run in the same invocation on data other than the sample dataset, notebook 05 uses what they trained
    (weights=<--ckpt-dir>), not the shipped weights (-p weights=... chooses others);
  - --smoke: "smoke", tiny runs (and smoke=True for notebooks 01 and 05).
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import json
import sys
import time
from pathlib import Path

from utils.core.train_config import PRESET_HELP, ConfigError, config_class

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ["01_eda", "02_train_mask", "03_train_colorization", "04_train_inpaint", "05_inference_submission"]
# the notebooks' folder parameters, set from this script's options (so that they are checked and made absolute)
RUNNER_PARAMS = {"data_dir": "--data-dir", "ckpt_dir": "--ckpt-dir", "out_dir": "--out"}
# the training notebooks and their stage: their `settings` parameter takes the -p values of the stage config's fields
TRAINING = {"02_train_mask": "mask", "03_train_colorization": "color", "04_train_inpaint": "inpaint"}
# -p parameters that are paths: a relative one is taken from the working directory, like the options above
PATH_PARAMS = ("weights", "submission_zip", "png_dir",
               *sorted({k for stage in TRAINING.values() for k in config_class(stage).path_fields()}))


def parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def key_value(text: str) -> tuple[str, object]:
    """-p key=value: (key, the value as a Python literal, else the text)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key.strip(), parse_value(value)


def declared_parameters(nb_path: Path) -> set[str]:
    nb = json.loads(nb_path.read_text())
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            src = "".join(cell["source"])
            return {t.id for node in ast.parse(src).body if isinstance(node, ast.Assign) for t in node.targets
                    if isinstance(t, ast.Name)}
    return set()


def config_fields(name: str) -> set[str]:
    """The config fields that a training notebook's `settings` takes (none for the others)."""
    return {f.name for f in dataclasses.fields(config_class(TRAINING[name]))} if name in TRAINING else set()


def accepted(name: str, declared: set[str]) -> set[str]:
    """What -p may set in a notebook: its parameters (less `settings`, which the config fields fill) and its
    config's fields."""
    return (declared - {"settings"}) | config_fields(name)


def notebook_params(name: str, declared: set[str], base: dict, extra: dict) -> dict:
    """The papermill parameters of one notebook: the runner's `base` ones and the -p values it has, a training
    notebook's config fields gathered into its `settings`."""
    params = {k: v for k, v in {**base, **extra}.items() if k in declared and k != "settings"}
    fields = config_fields(name)
    if fields:
        params["settings"] = {k: v for k, v in extra.items() if k in fields}
    return params


def kernel_config():
    """The notebooks' kernels talk to this process over an encrypted channel (CurveZMQ keys made by the kernel
    manager; the kernelspec of ipykernel 7 declares support), or over local IPC sockets where pyzmq has no CurveZMQ:
    plain TCP makes every kernel print a warning that its traffic could be read ("... susceptible to
    eavesdropping"), once per notebook."""
    import zmq
    from traitlets.config import Config

    config = Config()
    if zmq.has("curve"):
        config.KernelManager.transport_encryption = "auto"
    elif sys.platform != "win32":
        config.KernelManager.transport = "ipc"
    return config


FLOOR_NAMES = {"gray copy": "the gray input itself", "Telea, known mask": "OpenCV inpainting given the true hole"}


def final_report(summary: dict, png_dir: Path, out: Path, sample: bool) -> list[str]:
    """The run's last lines: where the restored PNGs, the zip and the executed notebooks are, and the score with
    how to read it (its terms, higher is better, 1.0 perfect, and the floors that notebook 05 scored on the same
    test images for scale)."""
    from utils.core.metric import WEIGHTS

    pngs = sorted(png_dir.glob("*.png")) if png_dir.is_dir() else []
    lines = ["", f"restored images: {png_dir}/ ({len(pngs)} PNGs)",
             f"submission zip:  {summary.get('zip')} ({'validated' if summary.get('validated') else 'NOT validated'})",
             f"notebooks run:   {out}/ (the executed copies, with their figures)"]
    s = summary.get("score")
    if s is None:
        lines.append("score: none (no test_gt/ and test_mask/ in this data: the competition scores the zip)")
        return lines
    lines.append(f"score on the {'sample ' if sample else ''}test set: {s['score']:.4f}  "
                 f"(SSIM {s['ssim']:.4f}, masked SSIM {s['masked_ssim']:.4f}, hue {s['hue']:.4f})")
    w = WEIGHTS
    lines.append(f"  how it reads: the competition's score = {w['ssim']} x SSIM + {w['masked_ssim']} x SSIM inside the "
                 f"hole + {w['hue']} x hue-histogram similarity; higher is better, 1.0 = identical to the truth")
    if summary.get("floors"):
        scale = "; ".join(f"{FLOOR_NAMES.get(name, name)} {v['score']:.4f}" for name, v in summary["floors"].items())
        lines.append(f"  for scale, on the same {len(pngs)} test images: {scale}")
    return lines


def _short(name: str) -> str:
    return name[:2]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="a folder holding a dataset (default: $IMAGE_RESTORE_DATA, else "
                    "data/ in the repository, where the sample dataset is built if none is there)")
    ap.add_argument("--out", default=None, help="where executed notebooks and the notebooks' numbers go "
                    "(default: $IMAGE_RESTORE_RUNS, else runs/)")
    ap.add_argument("--ckpt-dir", default=None, help="checkpoints of notebooks 02-04 (default: "
                    "$IMAGE_RESTORE_CHECKPOINTS, else checkpoints/)")
    ap.add_argument("--only", nargs="*", help="notebook number prefixes to run, e.g. 01 05")
    ap.add_argument("--smoke", action="store_true", help="tiny runs (tests; 02-04: the config preset 'smoke', -p "
                    "values on top); also on when $IMAGE_RESTORE_SMOKE=1")
    ap.add_argument("--full", action="store_true", help="the measured settings (preset 'default') on the sample "
                    "dataset too (without it, the sample dataset gets the short runs of preset 'sample' in 02-04; any "
                    "other data gets 'default')")
    ap.add_argument("-p", "--param", action="append", default=[], type=key_value, metavar="KEY=VALUE",
                    help="a parameter of the notebooks or a field of the training notebooks' configs (a Python "
                         "literal, else text); an error when no chosen notebook has it")
    args = ap.parse_args(argv)

    # the arguments are checked before any work (no data is built for a run that cannot start)
    for o in args.only or []:
        if not any(n.startswith(o) for n in NOTEBOOKS):
            ap.error(f"--only {o}: no such notebook (one of {', '.join(n[:2] for n in NOTEBOOKS)})")
    names = [n for n in NOTEBOOKS if not args.only or any(n.startswith(o) for o in args.only)]
    declared = {n: declared_parameters(ROOT / "notebooks" / f"{n}.ipynb") for n in names
                if (ROOT / "notebooks" / f"{n}.ipynb").exists()}
    takes = {n: accepted(n, d) for n, d in declared.items()}
    extra = dict(args.param)
    for key in extra:
        if key in RUNNER_PARAMS:
            ap.error(f"-p {key}: use {RUNNER_PARAMS[key]} (its path is checked and handed to every notebook)")
        if not any(key in t for t in takes.values()):
            known = sorted(set().union(*takes.values()) - set(RUNNER_PARAMS))
            close = difflib.get_close_matches(key, known, n=1)
            ap.error(f"-p {key}: not a parameter of {', '.join(declared) or 'the chosen notebooks'}"
                     + (f" (did you mean {close[0]}?)" if close else "")
                     + f"; {'its' if len(declared) == 1 else 'their'} parameters: {', '.join(known)}")
    for key in PATH_PARAMS:
        if isinstance(extra.get(key), str) and extra[key] != "auto":     # weights='auto': the notebook's choice
            extra[key] = str(Path(extra[key]).expanduser().resolve())
    for name in declared:           # a value that the stage's config refuses stops here, before any work
        if name in TRAINING:
            try:
                config_class(TRAINING[name]).preset(extra.get("preset", "default"),
                                                    **notebook_params(name, declared[name], {}, extra)["settings"])
            except ConfigError as e:
                ap.error(f"{name}: {e}")

    import papermill as pm

    import utils
    from utils.core.paths import cli_path
    from utils.data.sample_data import is_sample_dataset

    args.smoke = args.smoke or utils.smoke_default()
    data_dir = utils.resolve_data_dir(args.data_dir)            # a relative --data-dir: from the working directory
    try:
        utils.ensure_dataset(data_dir, **({"n_train": 12, "n_test": 4} if args.smoke else {}))  # (re)builds sample data
    except utils.DataError as e:
        ap.error(str(e))
    out = cli_path(args.out) if args.out else utils.project_dir("runs")
    ckpt = cli_path(args.ckpt_dir) if args.ckpt_dir else utils.project_dir("checkpoints")
    sample = is_sample_dataset(data_dir)     # the short runs and the shipped weights in 05 are for it only
    training = [n for n in names if n in declared and n in TRAINING]
    preset = "smoke" if args.smoke else "sample" if sample and not args.full else "default"
    chosen = f" (-p preset={extra['preset']} for {', '.join(map(_short, training))})" if "preset" in extra else ""
    if args.smoke:
        print(f"parameters: smoke mode (tiny runs: preset 'smoke' in 02-04, smoke=True in 01 and 05){chosen}",
              flush=True)
    elif preset == "sample":
        print(
            f"parameters: preset 'sample' in 02-04, short sample-data training ({PRESET_HELP['sample']}): "
            f"{data_dir} holds the sample dataset built from the bundled photos; --full for the measured "
            f"settings{chosen}",
            flush=True,
        )
    else:
        why = (
            "--full"
            if args.full
            else (
                f"{data_dir} is not the sample dataset built from the bundled photos, so no short sample-data training"
            )
        )
        print(f"parameters: preset 'default' in 02-04, the measured settings ({why}){chosen}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.time()
    for name in names:
        nb = ROOT / "notebooks" / f"{name}.ipynb"
        if name not in declared:
            print(f"skip {name}: not there yet")
            continue
        base = {
            "data_dir": str(data_dir),
            "ckpt_dir": str(ckpt),
            "smoke": args.smoke,
            "out_dir": str(out),
            "preset": preset,
        }
        weights_note = None
        if "weights" in declared[name]:
            if "weights" in extra:
                weights_note = f"{extra['weights']} (-p weights)"
            elif training and not sample:
                # 02-04 trained on this data in this run: score and zip what they trained, not the shipped weights
                base["weights"] = str(ckpt)
                if utils.find_weights(ckpt) is None:
                    print(
                        f"error: {name}: {ckpt} holds no complete set of mask/color/inpaint checkpoints (this run "
                        f"trained {', '.join(map(_short, training))} there); run 02-04 there too, or pass "
                        "-p weights=<a folder>",
                        file=sys.stderr,
                        flush=True,
                    )
                    return 1
                weights_note = (
                    f"{ckpt}: what {', '.join(map(_short, training))} trained in this run on {data_dir}, "
                    "which is not the sample dataset (-p weights=... for others)"
                )
            else:
                found = utils.default_weights("auto", ckpt)
                weights_note = (
                    f"{found or 'none complete'} (weights='auto': the shipped weights/ when complete, else {ckpt}"
                    + (
                        "; the sample dataset: its short runs of 02-04 only show each stage learning"
                        if sample
                        else "; no training notebook in this run on this data: "
                        f"-p weights={ckpt} for what 02-04 trained"
                    )
                    + ")"
                )
        params = notebook_params(name, declared[name], base, extra)
        t = time.time()
        print(f"== {name} {params}", flush=True)
        if weights_note:
            print(f"   {_short(name)} uses weights: {weights_note}", flush=True)
        # the kernel starts in notebooks/, as under Jupyter Lab, VS Code or Colab (paths resolve from the repository)
        try:
            pm.execute_notebook(
                str(nb),
                str(out / f"{name}.ipynb"),
                parameters=params,
                cwd=str(nb.parent),
                kernel_name="python3",
                progress_bar=True,
                log_output=False,
                config=kernel_config(),
            )
        except pm.PapermillExecutionError as e:
            if e.ename != "SettingsChangedError":
                raise
            print(f"error: {name}: {e.evalue} (here: --ckpt-dir <another folder>)", file=sys.stderr, flush=True)
            return 2
        print(f"   done in {time.time() - t:.0f} s -> {out / (name + '.ipynb')}", flush=True)
    summary = out / "summary.json"
    if "05_inference_submission" in names and summary.exists():
        png_dir = Path(extra["png_dir"]) if extra.get("png_dir") else utils.project_dir("submission") / "png"
        print("\n".join(final_report(json.loads(summary.read_text()), png_dir, out, sample)))
    print(f"total {time.time() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
