"""The colour post-process's hue remap: exact luminance, monotone remap, one strength knob (0 = natural), the hole
left alone, the edge-aware smoothing of the change, the identity is exact."""
import numpy as np
import pytest

import utils
from utils.inference.color import compose_rgb, pil_luma
from utils.inference.hue import BINS, angle_histogram, chroma_polar


def two_colour_image(seed=0):
    """Left half reddish, right half bluish, with texture, luma 40-200."""
    rng = np.random.default_rng(seed)
    img = np.zeros((64, 64, 3), np.uint8)
    base = rng.integers(60, 180, (64, 64)).astype(np.int32)
    img[:, :32] = np.stack([base[:, :32] + 50, base[:, :32], base[:, :32] - 30], -1).clip(0, 255)
    img[:, 32:] = np.stack([base[:, 32:] - 30, base[:, 32:], base[:, 32:] + 60], -1).clip(0, 255)
    return img


def green_prior():
    prior = np.zeros(BINS)
    prior[40:80] = 1.0              # a green band (Cb, Cr < 0) the test images do not have
    return prior / prior.sum()


def test_identity_config_returns_the_image_unchanged():
    img = two_colour_image()
    assert utils.match_hue(img, utils.HueConfig()) is img
    assert utils.match_hue(img, utils.HueConfig(strength=0.0, prior=list(green_prior()))) is img
    assert utils.HueConfig(strength=0.7, prior=None).is_identity


def test_bad_settings_are_refused():
    for s in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"strength must be in \[0, 1\]"):
            utils.HueConfig(strength=s)
    with pytest.raises(ValueError, match="prior must be a histogram"):
        utils.HueConfig(strength=1.0, prior=[0.0, -1.0, 2.0])
    with pytest.raises(ValueError, match="edge_radius"):
        utils.HueConfig(edge_radius=-1)


def test_match_hue_keeps_luma_and_moves_towards_the_prior_by_strength():
    img = two_colour_image()
    prior = green_prior()
    band = prior > 0
    shares = []
    for s in (0.25, 0.5, 1.0):
        out = utils.match_hue(img, utils.HueConfig(strength=s, keep_hole=False, prior=list(prior)))
        assert out.dtype == np.uint8 and out.shape == img.shape
        np.testing.assert_array_equal(pil_luma(out), pil_luma(img))
        shares.append(angle_histogram(out)[band].sum())
    assert angle_histogram(img)[band].sum() < 0.05
    assert shares[0] < shares[1] < shares[2] and shares[2] > 0.9     # the hues moved into the prior's band
    assert abs(shares[1] - 0.5) < 0.1                                   # half way at strength 0.5


def test_equal_colours_stay_together_and_the_hue_order_is_kept():
    img = np.zeros((32, 32, 3), np.uint8)
    img[:, :16] = (200, 80, 60)
    img[:, 16:] = (60, 90, 200)
    out = utils.match_hue(img, utils.HueConfig(strength=0.5, prior=list(np.full(BINS, 1.0 / BINS))))
    # a region of one exact colour stays one colour (no raster-order gradient) ...
    assert len(np.unique(out[:, :16].reshape(-1, 3), axis=0)) == 1
    assert len(np.unique(out[:, 16:].reshape(-1, 3), axis=0)) == 1
    assert not np.array_equal(out, img)
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
    out = utils.match_hue(img, utils.HueConfig(strength=1.0, keep_hole=True, prior=list(prior)), mask)
    np.testing.assert_array_equal(out[mask], img[mask])
    np.testing.assert_array_equal(out[:8], img[:8])
    assert not np.array_equal(out[~mask], img[~mask])
    edge = utils.match_hue(img, utils.HueConfig(strength=1.0, prior=list(prior), edge_radius=8), mask)
    np.testing.assert_array_equal(edge[mask], img[mask])                # the hole stays, with edge smoothing too
    np.testing.assert_array_equal(pil_luma(edge), pil_luma(img))


def sky_over_ground(n=128):
    """Top: a smooth sky (flat luma) whose hue drifts slowly from cyan-blue to violet-blue; bottom: an orange
    ground of another luma, with texture."""
    rng = np.random.default_rng(0)
    y = np.full((n, n), 170, np.uint8)
    y[n // 2:] = rng.integers(60, 90, (n - n // 2, n))
    ang = np.linspace(-0.2, 0.6, n)[None, :].repeat(n // 2, 0)      # Cb > 0: blue; the angle drifts along x
    cbcr = np.zeros((n, n, 2), np.float32)
    cbcr[:n // 2] = np.stack([0.1 * np.cos(ang), 0.1 * np.sin(ang)], -1)
    cbcr[n // 2:] = (-0.08, 0.08)                                      # orange
    return compose_rgb(y, cbcr + 0.5)


def test_edge_smoothing_makes_the_change_follow_objects_not_bands():
    """With edge_radius, the remap's chroma change is smoothed along the luminance: inside the flat sky its steps (the
    bands a steep remap paints) are spread out, while the sky and the ground, apart in luma, keep changes of their
    own."""
    from utils.inference.chroma import rgb_to_cbcr_np

    img = sky_over_ground()
    rng = np.random.default_rng(1)
    prior = rng.random(BINS) ** 4 + 0.01  # a spiky prior: a steep remap
    cfg = utils.HueConfig(strength=1.0, keep_hole=False, prior=list(prior / prior.sum()))
    plain = utils.match_hue(img, cfg)
    edge = utils.match_hue(img, utils.HueConfig(**{**cfg.to_dict(), "edge_radius": 24, "edge_eps": 1e-3}))
    np.testing.assert_array_equal(pil_luma(edge), pil_luma(img))
    change = lambda x: rgb_to_cbcr_np(x) - rgb_to_cbcr_np(img)  # noqa: E731
    sky = (slice(4, 60), slice(4, 124))
    steps = lambda c: (np.diff(c[sky], axis=1) ** 2).sum(-1).mean()  # noqa: E731  (a band is a step)
    assert steps(change(edge)) < 0.2 * steps(change(plain))
    ground = (slice(70, 124), slice(4, 124))
    d_plain = np.abs(change(plain)[sky].mean((0, 1)) - change(plain)[ground].mean((0, 1))).sum()
    d_edge = np.abs(change(edge)[sky].mean((0, 1)) - change(edge)[ground].mean((0, 1))).sum()
    assert d_edge > 0.5 * d_plain > 0  # the objects keep their own moves


def test_config_round_trip():
    cfg = utils.HueConfig(0.5, True, list(np.full(BINS, 1.0 / BINS)), edge_radius=16, edge_eps=0.02)
    assert utils.HueConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.warns(UserWarning, match=r"unknown keys \['hsv_pass', 'smooth'\]"):
        assert utils.HueConfig.from_dict({"strength": 0.5, "smooth": 8.0, "hsv_pass": 3.0}).strength == 0.5


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
    assert max(int(p[-9:-4]) for p in opened) > 25_000  # a sample of the whole list, not its head
    assert prior.shape == (BINS,) and np.isclose(prior.sum(), 1.0)
    assert np.allclose(prior, angle_histogram(img, BINS) / angle_histogram(img, BINS).sum())
    opened.clear()
    utils.hue_prior(paths[:20], progress=False, max_photos=None)
    assert len(opened) == 20
    opened.clear()
    utils.hue_prior(paths, progress=False)  # the default is bounded too
    assert len(opened) == utils.hue.HUE_PRIOR_MAX_PHOTOS
