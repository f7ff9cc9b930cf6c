import numpy as np
import pytest

import utils
from utils.data.damage import DamageConfig, apply_damage, sample_damage


def textured(seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (512, 512), dtype=np.uint8)


def rough_prob(mask, shrink=6, seed=0):
    """A network-like probability: the true mask eroded, blurred, with some noise."""
    import cv2
    core = cv2.erode(mask.astype(np.uint8), np.ones((shrink, shrink), np.uint8)).astype(np.float32)
    prob = cv2.GaussianBlur(core, (0, 0), 3)
    return np.clip(prob + np.random.default_rng(seed).normal(0, 0.05, prob.shape), 0, 1)


@pytest.mark.parametrize("seed", range(10))
def test_flat_fill_in_textured_image_is_recovered_exactly(seed):
    gray = textured(seed)
    dmg = sample_damage(np.random.default_rng(seed), DamageConfig(max_bbox=200))
    damaged = apply_damage(gray, dmg)
    refined = utils.refine_mask(damaged, rough_prob(dmg.mask, seed=seed))
    stats = utils.mask_stats(refined, dmg.mask)
    # a self-touching polygon can rasterize with a 1-px island disconnected from the hole: >= 0.999, not 1
    assert stats["recall"] >= 0.999
    assert stats["iou"] > 0.98  # random texture equals the fill value at ~1/256 of the border pixels


def test_fill_equal_to_natural_flat_area_does_not_leak():
    gray = textured(1)
    gray[:200] = 255                                  # saturated sky at the top
    mask = np.zeros((512, 512), bool)
    mask[150:300, 100:260] = True                     # a hole straddling the sky edge, filled with 255
    damaged = gray.copy()
    damaged[mask] = 255
    refined = utils.refine_mask(damaged, rough_prob(mask), utils.RefineConfig(grow_margin=12))
    stats = utils.mask_stats(refined, mask)
    assert stats["recall"] == 1.0
    # the sky is 255 too: growth stops within the margin instead of taking the whole sky
    assert refined.sum() < mask.sum() + 2 * 12 * (160 + 150) + 4 * 12 * 12
    assert not refined[:100].any()


def test_empty_and_faint_predictions():
    gray = textured(2)
    assert not utils.refine_mask(gray, np.zeros((512, 512))).any()
    mask = np.zeros((512, 512), bool)
    mask[200:260, 200:260] = True
    damaged = gray.copy()
    damaged[mask] = 17
    faint = mask * 0.2                                # below the threshold, above a quarter of it
    assert utils.mask_stats(utils.refine_mask(damaged, faint), mask)["recall"] == 1.0


def test_mask_stats():
    a = np.zeros((4, 4), bool)
    a[:2] = True
    b = np.zeros((4, 4), bool)
    b[:1] = True
    s = utils.mask_stats(b, a)
    assert s == {"iou": 0.5, "precision": 1.0, "recall": 0.5}


def test_partly_detected_hole_is_completed():
    gray = textured(3)
    mask = np.zeros((512, 512), bool)
    mask[100:300, 150:330] = True
    damaged = gray.copy()
    damaged[mask] = 90
    prob = np.zeros((512, 512))
    prob[100:300, 150:240] = 0.9                 # the network saw only the left half
    stats = utils.mask_stats(utils.refine_mask(damaged, prob), mask)
    assert stats["recall"] == 1.0 and stats["iou"] > 0.98


def test_missed_hole_fallback_prefers_unclipped_flat_region():
    gray = textured(4)
    gray[:150] = 255                              # a clipped sky, bigger than the hole
    mask = np.zeros((512, 512), bool)
    mask[20:110, 300:400] = True                  # a near-white hole inside the sky
    damaged = gray.copy()
    damaged[mask] = 249
    out = utils.refine_mask(damaged, np.zeros((512, 512)))
    stats = utils.mask_stats(out, mask)
    assert stats["recall"] == 1.0 and stats["precision"] == 1.0


def test_config_from_older_checkpoint_json_names_the_unknown_key():
    import pytest

    with pytest.warns(UserWarning, match=r"RefineConfig: unknown keys \['min_share'\]"):
        c = utils.RefineConfig.from_dict({"threshold": 0.3, "min_share": 0.5, "grow_margin": 10})
    assert c.threshold == 0.3 and c.grow_margin == 10 and c.take_share == utils.RefineConfig().take_share
    with pytest.warns(UserWarning, match=r"HueConfig: unknown keys \['strenght'\]"):
        assert utils.HueConfig.from_dict({"strenght": 1.0}) == utils.HueConfig()


def test_shipped_configs_have_no_unknown_keys():
    import json
    import warnings

    inference = {s: json.loads((utils.project_dir("weights") / f"{s}.json").read_text())["inference"]
                 for s in ("mask", "color")}
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # any unknown key would raise here
        utils.RefineConfig.from_dict(inference["mask"]["refine"])
        utils.HueConfig.from_dict(inference["color"]["hue"])
    assert inference["color"].get("hole_colour", "net") in utils.pipeline.HOLE_COLOURS


def test_thin_dashed_tail_is_followed():
    gray = textured(5)
    mask = np.zeros((512, 512), bool)
    mask[200:260, 100:160] = True                 # the body of the polygon
    mask[229, 160:240:2] = True                   # a 1-px tail that rasterized as a dashed line (within tail_margin)
    damaged = gray.copy()
    damaged[mask] = 140
    body_only = np.zeros((512, 512))
    body_only[205:255, 105:155] = 0.9             # the network sees the body, not the tail
    stats = utils.mask_stats(utils.refine_mask(damaged, body_only), mask)
    assert stats["recall"] == 1.0
    off = utils.refine_mask(damaged, body_only, utils.RefineConfig(tail_margin=0))
    assert utils.mask_stats(off, mask)["recall"] < 1.0
