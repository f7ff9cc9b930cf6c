import numpy as np
import pytest

import utils
from utils.data.damage import DamageConfig, apply_damage, sample_damage

NO_RULE = {"min_confident_area": 0, "min_hole_value_share": 0.0, "min_hole_prob": 0.0}   # the minimum-hole rule off


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
    refined = utils.refine_mask(damaged, rough_prob(dmg.mask, seed=seed), utils.RefineConfig(**NO_RULE))
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
    off = utils.RefineConfig(**NO_RULE)
    assert utils.mask_stats(utils.refine_mask(damaged, faint, off), mask)["recall"] == 1.0
    assert not utils.refine_mask(damaged, faint).any()    # too unsure for the minimum-hole rule: no hole


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
    stats = utils.mask_stats(utils.refine_mask(damaged, prob, utils.RefineConfig(**NO_RULE)), mask)
    assert stats["recall"] == 1.0 and stats["iou"] > 0.98
    # the minimum-hole rule reads where the network is confident, not its mean over the completed hole (0.45)
    assert utils.mask_stats(utils.refine_mask(damaged, prob), mask)["recall"] == 1.0


def test_missed_hole_fallback_prefers_unclipped_flat_region():
    gray = textured(4)
    gray[:150] = 255                              # a clipped sky, bigger than the hole
    mask = np.zeros((512, 512), bool)
    mask[20:110, 300:400] = True                  # a near-white hole inside the sky
    damaged = gray.copy()
    damaged[mask] = 249
    out = utils.refine_mask(damaged, np.zeros((512, 512)), utils.RefineConfig(**NO_RULE))
    stats = utils.mask_stats(out, mask)
    assert stats["recall"] == 1.0 and stats["precision"] == 1.0
    assert not utils.refine_mask(damaged, np.zeros((512, 512))).any()   # off under the minimum-hole rule


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


def clean_photo(seed=6):
    """An undamaged synthetic photo: smooth shading plus noise (nothing exactly flat), a clipped white sky at the
    top (exactly flat: what a one-value hole looks like) and a cup's rim: 93 px of one value."""
    import cv2

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:512, 0:512]
    shade = 60 + 120 * (xx / 511) + 20 * np.sin(yy / 23.0)
    noisy = cv2.GaussianBlur(shade + rng.normal(0, 6, (512, 512)), (0, 0), 1.0)
    gray = np.clip(noisy, 1, 254).round().astype(np.uint8)
    gray[:120] = 255
    gray[300:303, 150:181] = 200                  # a cup's rim: a thin band of one value, 3 x 31 px
    return gray


def test_an_undamaged_photo_gets_no_hole():
    gray = clean_photo()
    before = gray.copy()
    rule = utils.RefineConfig()
    assert rule.min_confident_area > 93 and rule.min_hole_value_share > 0
    nothing = np.zeros((512, 512), np.float32)
    assert utils.refine_mask(gray, nothing, utils.RefineConfig(**NO_RULE)).any()   # the fallback takes the sky ...
    assert not utils.refine_mask(gray, nothing).any()                               # ... the network saw nothing
    unsure = np.zeros((512, 512), np.float32)
    unsure[60:200, 200:300] = 0.45                # a weak guess over the sky's edge and the texture below
    assert utils.refine_mask(gray, unsure, utils.RefineConfig(**NO_RULE)).any()
    assert not utils.refine_mask(gray, unsure).any()
    texture = np.zeros((512, 512), np.float32)
    texture[380:420, 300:360] = 0.95              # a confident blob on texture: no one value under it
    assert utils.refine_mask(gray, texture, utils.RefineConfig(**NO_RULE)).any()
    assert not utils.refine_mask(gray, texture).any()
    rim = np.zeros((512, 512), np.float32)
    rim[300:303, 150:181] = 0.95                  # a confident guess on the rim: one value but too small
    assert utils.refine_mask(gray, rim, utils.RefineConfig(**NO_RULE)).sum() == 93
    assert not utils.refine_mask(gray, rim).any()
    assert np.array_equal(gray, before)


def test_each_minimum_drops_a_hole_on_its_own():
    from utils.inference.mask_refine import hole_evidence

    gray = clean_photo()
    hole = np.zeros((512, 512), bool)
    hole[200:240, 100:150] = True                 # 2000 px
    damaged = gray.copy()
    damaged[hole] = 17                            # a value the photo lacks
    prob = hole * np.float32(0.8)
    prob[200:240, 100:110] = 0.3                  # the network unsure over 400 px of it
    e = hole_evidence(damaged, prob, hole)
    assert e == {"area": 2000, "confident_area": 1600, "mean_prob": pytest.approx(0.7), "value_share": 1.0}
    keep = utils.refine_mask(damaged, prob, utils.RefineConfig(**NO_RULE))
    assert np.array_equal(keep, hole)
    for field, drops, keeps in (("min_confident_area", 1601, 1600), ("min_hole_prob", 0.71, 0.69)):
        assert not utils.refine_mask(damaged, prob, utils.RefineConfig(**{**NO_RULE, field: drops})).any()
        assert utils.refine_mask(damaged, prob, utils.RefineConfig(**{**NO_RULE, field: keeps})).any()
    checker = damaged.copy()
    checker[hole] = np.where((np.indices((512, 512)).sum(0) % 2)[hole] == 0, 17, 18)   # nothing flat: two values
    sure = hole * np.float32(0.8)
    assert hole_evidence(checker, sure, hole)["value_share"] == 0.5
    assert np.array_equal(utils.refine_mask(checker, sure, utils.RefineConfig(**NO_RULE)), hole)  # the network's
    assert not utils.refine_mask(checker, sure, utils.RefineConfig(**{**NO_RULE, "min_hole_value_share": 0.6})).any()
    assert utils.refine_mask(checker, sure, utils.RefineConfig(**{**NO_RULE, "min_hole_value_share": 0.4})).any()


def test_a_real_hole_keeps_the_default_rule():
    gray = clean_photo()
    dmg = sample_damage(np.random.default_rng(3), DamageConfig(max_bbox=160))
    damaged = apply_damage(gray, dmg)
    stats = utils.mask_stats(utils.refine_mask(damaged, rough_prob(dmg.mask)), dmg.mask)
    assert stats["recall"] >= 0.999 and stats["iou"] > 0.98
