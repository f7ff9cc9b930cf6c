"""Hue-histogram matching: exact luminance, monotone remap, the hole left alone, the identity is exact."""
import numpy as np
import pytest

import utils
from utils.color import pil_luma
from utils.hue import BINS, angle_histogram, chroma_polar


def two_colour_image(seed=0):
    """Left half reddish, right half bluish, with texture, luma 40-200."""
    rng = np.random.default_rng(seed)
    img = np.zeros((64, 64, 3), np.uint8)
    base = rng.integers(60, 180, (64, 64)).astype(np.int32)
    img[:, :32] = np.stack([base[:, :32] + 50, base[:, :32], base[:, :32] - 30], -1).clip(0, 255)
    img[:, 32:] = np.stack([base[:, 32:] - 30, base[:, 32:], base[:, 32:] + 60], -1).clip(0, 255)
    return img



def test_identity_config_returns_the_image_unchanged():
    img = two_colour_image()
    assert utils.match_hue(img, utils.HueConfig()) is img
    assert utils.HueConfig(strength=0.7, prior=None).is_identity


def test_match_hue_keeps_luma_and_moves_towards_the_prior():
    img = two_colour_image()
    prior = np.zeros(BINS)
    prior[40:80] = 1.0              # a green band (Cb, Cr < 0) the image does not have
    prior /= prior.sum()
    cfg = utils.HueConfig(strength=1.0, smooth=2.0, keep_hole=False, prior=list(prior))
    out = utils.match_hue(img, cfg)
    assert out.dtype == np.uint8 and out.shape == img.shape
    np.testing.assert_array_equal(pil_luma(out), pil_luma(img))
    before, after = angle_histogram(img), angle_histogram(out)
    band = prior > 0
    assert before[band].sum() < 0.5 and after[band].sum() > 0.9     # the hues moved into the prior's band


def test_smoothing_spreads_peaks_and_keeps_equal_colours_together():
    img = np.zeros((32, 32, 3), np.uint8)
    img[:, :16] = (200, 80, 60)
    img[:, 16:] = (60, 90, 200)
    out = utils.match_hue(img, utils.HueConfig(strength=0.0, smooth=8.0))
    # a region of one exact colour stays one colour (no raster-order gradient) ...
    assert len(np.unique(out[:, :16].reshape(-1, 3), axis=0)) == 1
    assert len(np.unique(out[:, 16:].reshape(-1, 3), axis=0)) == 1
    # ... and hue order around the circle is kept: the two regions stay apart
    t_in, _ = chroma_polar(img)
    t_out, _ = chroma_polar(out)
    assert abs(t_out[0, 0] - t_out[0, -1]) > 0.5 * abs(t_in[0, 0] - t_in[0, -1])


def test_keep_hole_and_gray_pixels_are_bit_exact():
    img = two_colour_image(1)
    img[:8] = img[:8].mean(-1, keepdims=True).astype(np.uint8)   # gray rows: no chroma, no hue to move
    mask = np.zeros(img.shape[:2], bool)
    mask[20:40, 20:40] = True
    prior = np.full(BINS, 1.0 / BINS)
    out = utils.match_hue(img, utils.HueConfig(strength=1.0, smooth=4.0, keep_hole=True, prior=list(prior)), mask)
    np.testing.assert_array_equal(out[mask], img[mask])
    np.testing.assert_array_equal(out[:8], img[:8])
    assert not np.array_equal(out[~mask], img[~mask])


def test_config_round_trip_and_calibration_picks_a_setting():
    prior = np.full(BINS, 1.0 / BINS)
    cfg = utils.HueConfig(0.5, 8.0, True, list(prior))
    assert utils.HueConfig.from_dict(cfg.to_dict()) == cfg
    gts = [two_colour_image(s) for s in range(3)]
    preds = [np.repeat(utils.gray_of(g)[..., None], 3, -1) for g in gts]   # gray predictions: nothing to move
    masks = [np.zeros(g.shape[:2], bool) for g in gts]
    best, table = utils.calibrate_hue(preds, gts, masks, prior, strengths=(0.0, 1.0), smooths=(0.0, 4.0))
    assert len(table) == 4 and table["score"].is_monotonic_decreasing
    assert table.iloc[0]["score"] == pytest.approx(table["score"].max())
    assert isinstance(best, utils.HueConfig)


def test_restorer_reads_the_hue_config(tiny_weights, tmp_path):
    import shutil

    shutil.copytree(tiny_weights, tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("onnx"))
    cfg = utils.HueConfig(0.0, 8.0, True, list(np.full(BINS, 1.0 / BINS)))
    utils.update_inference_config(tmp_path / "color", hue=cfg.to_dict())
    restorer = utils.Restorer.from_dir(tmp_path, device="cpu")
    assert restorer.hue == cfg
    assert utils.Restorer.from_dir(tiny_weights, device="cpu").hue.is_identity


def test_hue_prior_reads_a_bounded_sample_of_a_competition_size_set(monkeypatch):
    """29,603 photos (the competition's train set): the prior reads at most max_photos of them, a seeded
    sample spread over the whole list, and max_photos=None still reads every one of a small list."""
    opened = []
    img = two_colour_image()

    def counting_read(path, mode=None, size=None, convert=False):
        opened.append(path)
        return img

    monkeypatch.setattr(utils.images, "read_image", counting_read)
    paths = [f"train_gt/TRAIN_{i:05d}.png" for i in range(29_603)]
    prior = utils.hue_prior(paths, progress=False, max_photos=500)
    assert len(opened) == 500 and len(set(opened)) == 500
    assert max(int(p[-9:-4]) for p in opened) > 25_000       # a sample of the whole list, not its head
    assert prior.shape == (BINS,) and np.isclose(prior.sum(), 1.0)
    assert np.allclose(prior, angle_histogram(img, BINS) / angle_histogram(img, BINS).sum())
    opened.clear()
    utils.hue_prior(paths[:20], progress=False, max_photos=None)
    assert len(opened) == 20
    opened.clear()
    utils.hue_prior(paths, progress=False)                   # the default is bounded too
    assert len(opened) == utils.hue.HUE_PRIOR_MAX_PHOTOS


def _corr(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_hsv_pass_realises_the_target_in_the_metrics_bins_and_keeps_luma():
    """match_hsv_hue: the OpenCV hue histogram (the metric's) moves to the target taken to OpenCV's bins; pale
    pixels (chroma below the threshold) stay bit-exact, and every pixel keeps its PIL luma."""
    from utils.hue import _angle_hsv, hsv_hue_histogram, match_hsv_hue

    from utils.color import compose_rgb

    rng = np.random.default_rng(3)                  # many hues (a monotone remap keeps equal angles together)
    ang = np.sort(rng.uniform(0.3, 1.8, 64 * 64)).reshape(64, 64)      # all in one arc, away from the target
    cbcr = np.stack([0.08 * np.cos(ang), 0.08 * np.sin(ang)], -1) + 0.5
    img = compose_rgb(rng.integers(70, 180, (64, 64)).astype(np.uint8), cbcr)
    pale = np.zeros(img.shape[:2], bool)
    pale[:, :6] = True
    img[pale] = (img[pale].astype(np.int32).mean(-1, keepdims=True) + np.array([1, 0, 0])).clip(0, 255)
    target = np.zeros(BINS)
    target[40:80] = 1.0             # a green band the image does not have
    target[120:140] = 0.5
    target /= target.sum()
    t_hsv = target @ _angle_hsv(BINS)[0]
    out = match_hsv_hue(img, target, min_chroma=3.0)
    np.testing.assert_array_equal(pil_luma(out), pil_luma(img))
    _, radius = chroma_polar(img)
    still = radius <= 3.0 / 255
    assert still[pale].all()
    np.testing.assert_array_equal(out[still], img[still])
    before, after = _corr(hsv_hue_histogram(img), t_hsv), _corr(hsv_hue_histogram(out), t_hsv)
    assert before < 0.2 and after > 0.7        # the pale 9% stay on one bin, a spike the target lacks
    assert match_hsv_hue(img, target, min_chroma=1e6) is img      # nothing movable: unchanged


def test_hsv_pass_config_key_defaults_off():
    assert utils.HueConfig.from_dict({"strength": 1.0}).hsv_pass == 0.0
    cfg = utils.HueConfig(1.0, 0.0, True, list(np.full(BINS, 1.0 / BINS)), hsv_pass=3.0)
    assert utils.HueConfig.from_dict(cfg.to_dict()) == cfg
