import cv2
import numpy as np
import pytest
from skimage.metrics import structural_similarity

import utils


def reference_score(gt, pred, mask):
    """The competition's formula written out with direct skimage/OpenCV calls."""
    s = structural_similarity(gt, pred, channel_axis=-1, data_range=pred.max() - pred.min())
    m = structural_similarity(gt[mask > 0], pred[mask > 0], channel_axis=-1, data_range=pred.max() - pred.min())
    h = []
    for img in (gt, pred):
        hist = cv2.calcHist([cv2.cvtColor(img, cv2.COLOR_RGB2HSV)], [0], None, [180], [0, 180])
        h.append(cv2.normalize(hist, hist).flatten())
    hue = cv2.compareHist(h[0], h[1], cv2.HISTCMP_CORREL)
    return 0.2 * s + 0.4 * m + 0.4 * hue, s, m, hue


def random_case(seed):
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    pred = np.clip(gt.astype(int) + rng.integers(-60, 60, gt.shape), 0, 255).astype(np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[10:30, 5:40] = True
    return gt, pred, mask


@pytest.mark.parametrize("seed", range(5))
def test_matches_direct_calls_on_random_images(seed):
    gt, pred, mask = random_case(seed)
    got = utils.score_image(gt, pred, mask)
    score, s, m, h = reference_score(gt, pred, mask)
    assert got["score"] == pytest.approx(score, abs=1e-12)
    assert (got["ssim"], got["masked_ssim"], got["hue"]) == pytest.approx((s, m, h), abs=1e-12)
    assert got["score"] < 0.99


def test_matches_direct_calls_on_real_images(sample_data):
    gt = utils.read_image(sample_data / "test_gt" / "TEST_000.png", "RGB")
    mask = utils.read_image(sample_data / "test_mask" / "TEST_000.png", "L") > 0
    gray = utils.read_image(sample_data / "test_input" / "TEST_000.png", "L")
    for pred in (utils.gray_copy(gray), utils.telea(gray, mask)):
        got = utils.score_image(gt, pred, mask)
        assert got["score"] == pytest.approx(reference_score(gt, pred, mask)[0], abs=1e-12)
    assert utils.score_image(gt, gt, mask)["score"] == pytest.approx(1.0)
    assert utils.score_image(gt, gt.copy(), mask)["masked_ssim"] == pytest.approx(1.0)


def test_identical_random_images_score_one():
    gt, _, mask = random_case(9)
    r = utils.score_image(gt, gt.copy(), mask)
    assert r["score"] == pytest.approx(1.0) and r["hue"] == pytest.approx(1.0)


def test_constant_prediction_is_finite_and_low():
    gt, _, mask = random_case(1)
    r = utils.score_image(gt, np.full_like(gt, 128), mask)
    assert all(np.isfinite(v) for k, v in r.items() if k != "masked_fallback")
    assert r["ssim"] < 0.05


def test_tiny_hole_falls_back_to_full_ssim():
    gt, pred, _ = random_case(2)
    mask = np.zeros(gt.shape[:2], bool)
    mask[0, :3] = True
    r = utils.score_image(gt, pred, mask)
    assert r["masked_fallback"] and r["masked_ssim"] == pytest.approx(r["ssim"])


def test_bad_shapes_raise():
    gt, pred, mask = random_case(0)
    with pytest.raises(ValueError):
        utils.score_image(gt, pred[:32], mask)
    with pytest.raises(ValueError):
        utils.score_image(gt, pred.astype(np.float32), mask)


def test_score_folder(sample_data, tmp_path):
    for p in sorted((sample_data / "test_input").glob("*.png")):
        utils.write_png(tmp_path / p.name, utils.gray_copy(utils.read_image(p, "L")))
    table = utils.score_folder(tmp_path, sample_data / "test_gt", sample_data / "test_mask")
    assert len(table) == 4 and table["score"].between(0, 1).all()
    (tmp_path / "TEST_001.png").unlink()
    with pytest.raises(utils.DataError, match="TEST_001.png"):
        utils.score_folder(tmp_path, sample_data / "test_gt", sample_data / "test_mask")
