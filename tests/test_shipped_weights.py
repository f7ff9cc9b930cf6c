"""The shipped weights in weights/: they load, their checksums verify, and they restore better than the floor."""
import json
from pathlib import Path

import numpy as np
import pytest

import utils

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"


def test_shipped_weights_load_and_verify():
    sums = json.loads((WEIGHTS / "checksums.json").read_text())
    assert set(sums) == {f"{s}{e}" for s in ("mask", "color", "inpaint") for e in (".safetensors", ".json")}
    utils.verify_checksums(WEIGHTS)
    total = sum((WEIGHTS / n).stat().st_size for n in sums)
    assert total < 60 * 2**20
    assert (WEIGHTS / "README.md").is_file()


@pytest.mark.slow
def test_shipped_weights_beat_the_telea_floor(sample_data):
    """On the sample test split (bundled photos held out of the sample train split), with the predicted mask."""
    restorer = utils.Restorer.from_dir(WEIGHTS, device="cpu")
    ours, floor, ious = [], [], []
    for p in sorted((sample_data / "test_input").glob("*.png")):
        gray = utils.read_image(p, "L")
        gt = utils.read_image(sample_data / "test_gt" / p.name, "RGB")
        mask = utils.read_image(sample_data / "test_mask" / p.name, "L") > 0
        r = restorer.restore_batch([gray])[0]
        ours.append(utils.score_image(gt, r.restored, mask)["score"])
        floor.append(utils.score_image(gt, utils.telea(gray, mask), mask)["score"])
        ious.append(utils.mask_stats(r.mask, mask)["iou"])
    assert np.mean(ious) > 0.95
    assert np.mean(ours) > np.mean(floor), (ours, floor)
