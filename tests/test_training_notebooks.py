"""Notebooks 02-04 in smoke mode, one after the other as the main command runs them: each trains one epoch of its
config's smoke preset, compares its options and writes its checkpoint (with its config), metrics and (03) the colour
post-process. In a file of its own so that the test runner's two workers share the notebook tests (one file runs
on one worker)."""
import json
from pathlib import Path

import pytest
from test_notebooks import run_notebooks

import utils

pytestmark = [pytest.mark.notebook, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def nb_env(sample_data, tmp_path_factory):
    base = tmp_path_factory.mktemp("nb_train")
    return {"data": sample_data, "out": base / "runs", "ckpt": base / "ckpt"}


def test_training_notebooks(nb_env):
    # no --ckpt-dir: $IMAGE_RESTORE_CHECKPOINTS says where the checkpoints go
    run_notebooks(["02", "03", "04"], nb_env["data"], nb_env["out"], None,
                  env={"IMAGE_RESTORE_CHECKPOINTS": str(nb_env["ckpt"])})
    for stage in ("mask", "color", "inpaint"):
        net, cfg = utils.load_model(nb_env["ckpt"] / stage)
        assert cfg["epoch"] == 1
        # each notebook trained its config's smoke preset, and saved that config beside the checkpoint
        assert cfg["train_config"] == utils.config_class(stage).preset("smoke").to_dict()
    for name in ("mask", "color", "inpaint"):
        metrics = json.loads((nb_env["ckpt"] / f"{name}_metrics.json").read_text())
        assert metrics["ms_per_image"] > 0 and "loss_comparison" in metrics
    hue = utils.load_model(nb_env["ckpt"] / "color")[1]["inference"]["hue"]   # 03 wrote the colour post-process
    assert len(hue["prior"]) == utils.hue.BINS and abs(sum(hue["prior"]) - 1) < 1e-6 and 0 <= hue["strength"] <= 1
    assert (nb_env["out"] / "03_train_colorization.ipynb").exists()
    exported = utils.export_weights(nb_env["ckpt"], nb_env["out"].parent / "exported")     # as the shipped weights are
    assert len(exported) == 6 and all(
        "train_config" in json.loads((nb_env["out"].parent / "exported" / f"{s}.json").read_text())
        for s in ("mask", "color", "inpaint"))
    assert not list((ROOT / "notebooks").glob("*.ipynb.*"))  # executed copies go to runs/, never notebooks/
    assert not [d for d in ("data", "runs", "checkpoints", "submission") if (ROOT / "notebooks" / d).exists()]
