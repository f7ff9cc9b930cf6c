"""Every notebook executes top to bottom in smoke mode, through the same runner as the main command, its kernel
started in notebooks/ as Jupyter starts it (paths resolve from the repository, not the working directory)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import utils
from conftest import make_tiny_weights

ROOT = Path(__file__).resolve().parent.parent


def run_notebooks(only, data, out, ckpt, *params):
    cmd = [sys.executable, str(ROOT / "tools" / "run_notebooks.py"), "--smoke", "--data-dir", str(data),
           "--out", str(out), "--ckpt-dir", str(ckpt), "--only", *only]
    for p in params:
        cmd += ["-p", p]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def nb_env(sample_data, tmp_path_factory):
    base = tmp_path_factory.mktemp("nb")
    return {"data": sample_data, "out": base / "runs", "ckpt": base / "ckpt"}


def test_eda_notebook(nb_env):
    run_notebooks(["01"], nb_env["data"], nb_env["out"], nb_env["ckpt"])
    floors = json.loads((nb_env["out"] / "floors.json").read_text())
    assert set(floors) == {"gray copy", "Telea, known mask"}
    assert floors["Telea, known mask"]["masked_ssim"] > floors["gray copy"]["masked_ssim"]
    nb = json.loads((nb_env["out"] / "01_eda.ipynb").read_text())
    assert any(o.get("output_type") == "display_data" for c in nb["cells"] for o in c.get("outputs", []))  # plots drawn


def test_training_notebooks(nb_env):
    run_notebooks(["02", "03", "04"], nb_env["data"], nb_env["out"], nb_env["ckpt"])
    for stage in ("mask", "color", "inpaint", "inpaint_disc"):
        net, cfg = utils.load_model(nb_env["ckpt"] / stage)
        assert cfg["epoch"] == 1
    for name in ("mask", "color", "inpaint"):
        metrics = json.loads((nb_env["ckpt"] / f"{name}_metrics.json").read_text())
        assert metrics["ms_per_image"] > 0 and "loss_comparison" in metrics
    hue = utils.load_model(nb_env["ckpt"] / "color")[1]["inference"]["hue"]   # 04 tuned the pipeline's hue matching
    assert len(hue["prior"]) == utils.hue.BINS and abs(sum(hue["prior"]) - 1) < 1e-6 and hue["smooth"] >= 0
    assert (nb_env["out"] / "03_train_colorization.ipynb").exists()
    assert not list((ROOT / "notebooks").glob("*.ipynb.*"))  # executed copies go to runs/, never notebooks/
    assert not [d for d in ("data", "runs", "checkpoints", "submission") if (ROOT / "notebooks" / d).exists()]


def test_mask_notebook_trains_in_two_processes(nb_env, tmp_path):
    """num_processes=2: notebook 02 trains through accelerate's notebook_launcher (two gloo processes on the CPU),
    then loads the checkpoint back for its later cells."""
    run_notebooks(["02"], nb_env["data"], nb_env["out"], tmp_path / "ckpt", "num_processes=2")
    nb = json.loads((nb_env["out"] / "02_train_mask.ipynb").read_text())
    assert not [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    cfg = utils.load_model(tmp_path / "ckpt" / "mask")[1]
    assert cfg["epoch"] == 1 and cfg["history"][-1]["images"] > 0
    summary = json.loads((tmp_path / "ckpt" / "mask_metrics.json").read_text())
    assert "loss_comparison" not in summary and summary["loss"] == "bce+dice"     # no comparison in this mode


def test_mask_notebook_trains_on_the_provided_pairs(nb_env, tmp_path):
    """train_source='both': notebook 02 trains on synthetic damage and the data set's own train_input pairs."""
    run_notebooks(["02"], nb_env["data"], nb_env["out"], tmp_path / "ckpt", "train_source='both'", "compare_losses=False")
    n_train = len(utils.prepare_run(nb_env["data"], "cpu")["train_paths"])
    nb = json.loads((nb_env["out"] / "02_train_mask.ipynb").read_text())
    printed = "".join(t for c in nb["cells"] for o in c.get("outputs", []) for t in o.get("text", []))
    assert f"train items (both): {2 * n_train}" in printed
    cfg = utils.load_model(tmp_path / "ckpt" / "mask")[1]
    assert cfg["epoch"] == 1 and cfg["history"][-1]["images"] > 0


def test_colour_notebook_fine_tunes_on_fresh_photo_crops(nb_env, tmp_path):
    """train_source='photos' with init_weights: notebook 03 starts from given weights and trains on crops drawn
    afresh from the full-resolution photos that the data dir's manifest names (no validation photo among them)."""
    weights = make_tiny_weights(tmp_path / "w")
    run_notebooks(["03"], nb_env["data"], nb_env["out"], tmp_path / "ckpt", "train_source='photos'",
                  f"init_weights='{weights}'", "compare_losses=False", "loss='perceptual+l1'")
    run = utils.prepare_run(nb_env["data"], "cpu")
    n_photos = len(utils.train_photo_paths(nb_env["data"], run["train_paths"], run["val_paths"]))
    nb = json.loads((nb_env["out"] / "03_train_colorization.ipynb").read_text())
    printed = "".join(t for c in nb["cells"] for o in c.get("outputs", []) for t in o.get("text", []))
    assert f"train items (photos): {n_photos}" in printed
    state = utils.checkpoints.load_train_state(tmp_path / "ckpt" / "color.train_state.pt")
    assert state["settings"]["init_weights"] == str(weights) and state["history"][-1]["images"] > 0


def test_inference_notebook(nb_env, tmp_path):
    weights = make_tiny_weights(tmp_path / "w")
    sub = tmp_path / "sub" / "submission.zip"
    run_notebooks(["05"], nb_env["data"], nb_env["out"], nb_env["ckpt"], f"weights={weights}",
                  f"submission_zip={sub}", f"png_dir={tmp_path / 'png'}")
    summary = json.loads((nb_env["out"] / "summary.json").read_text())
    assert summary["validated"] and Path(summary["zip"]) == sub.resolve()
    assert utils.validate_submission(sub, nb_env["data"] / "test.csv")
    assert 0 < summary["score"]["score"] < 1
