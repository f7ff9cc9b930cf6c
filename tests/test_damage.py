import numpy as np
import pytest

import utils
from utils.data.damage import DamageConfig, apply_damage, sample_damage


@pytest.mark.parametrize("seed", range(40))
def test_polygon_damage_properties(seed):
    rng = np.random.default_rng(seed)
    gray = np.random.default_rng(100 + seed).integers(0, 256, (512, 512), dtype=np.uint8)
    dmg = sample_damage(rng, DamageConfig())
    out = apply_damage(gray, dmg)
    assert dmg.kind in ("random", "star", "convex")
    assert dmg.mask.any()
    # one fill value inside, untouched outside
    assert np.all(out[dmg.mask] == dmg.fill)
    assert np.array_equal(out[~dmg.mask], gray[~dmg.mask])
    assert 0 <= dmg.fill <= 255
    # sampled bbox bounds, and the polygon stays inside it
    x1, y1, x2, y2 = dmg.bbox
    assert x2 - x1 >= 50 and y2 - y1 >= 50 and (x2 - x1) * (y2 - y1) > 25 ** 2
    ys, xs = np.nonzero(dmg.mask)
    assert xs.min() >= x1 and xs.max() <= x2 and ys.min() >= y1 and ys.max() <= y2


def test_damage_is_reproducible_and_varied():
    a = sample_damage(np.random.default_rng(7))
    b = sample_damage(np.random.default_rng(7))
    c = sample_damage(np.random.default_rng(8))
    assert np.array_equal(a.mask, b.mask) and a.fill == b.fill
    assert not np.array_equal(a.mask, c.mask)


def test_damage_config_controls_bbox_fill_and_shapes():
    cfg = DamageConfig(min_bbox=60, max_bbox=120, fill_range=(200, 210), shapes={"convex": 1.0})
    for s in range(30):
        d = sample_damage(np.random.default_rng(s), cfg)
        x1, y1, x2, y2 = d.bbox
        assert 60 <= x2 - x1 <= 120 and 60 <= y2 - y1 <= 120
        assert 200 <= d.fill <= 210 and d.kind == "convex"


def test_train_style_share():
    cfg = DamageConfig(train_style_share=1.0)
    kinds = {sample_damage(np.random.default_rng(s), cfg).kind for s in range(20)}
    assert kinds <= {"square", "circle"} and kinds
    d = sample_damage(np.random.default_rng(0), cfg)
    assert d.fill <= 8 and 100 < np.sqrt(d.mask.sum()) < 180


def test_polygenerator_state_restored():
    import random
    random.seed(123)
    expected = [random.random() for _ in range(3)]
    random.seed(123)
    sample_damage(np.random.default_rng(0))
    assert [random.random() for _ in range(3)] == expected


def test_synthetic_dataset_seeded(sample_data):
    table = utils.load_train_table(sample_data)
    ds = utils.SyntheticDamageDataset(table["gt_image_path"], seed=3)
    s1, s2 = ds.sample(2), ds.sample(2)
    assert np.array_equal(s1["gray"], s2["gray"]) and np.array_equal(s1["mask"], s2["mask"])
    # outside the hole the input equals PIL convert('L') of the (augmented) target
    assert np.array_equal(s1["gray"][~s1["mask"]], utils.gray_of(s1["rgb"])[~s1["mask"]])
    ds.set_epoch(1)
    assert not np.array_equal(ds.sample(2)["mask"], s1["mask"])
    item = utils.SyntheticDamageDataset(table["gt_image_path"], size=256)[0]
    assert item["gray"].shape == (1, 256, 256) and item["rgb"].shape == (3, 256, 256)
    assert 0 < float(item["mask"].mean()) < 1


KINDS = ["random", "star", "convex", "square", "circle"]


def _config_for(kind):
    if kind in ("square", "circle"):
        return DamageConfig(train_style_share=1.0)
    return DamageConfig(shapes={kind: 1.0})


@pytest.mark.parametrize("kind", KINDS)
def test_damage_area_matches_kind_over_many_seeds(kind):
    """Every kind, many seeds: area in the kind's promised range, one fill value, outside unchanged."""
    from utils.data.damage import expected_area

    cfg = _config_for(kind)
    gray = np.random.default_rng(5).integers(0, 256, (512, 512), dtype=np.uint8)
    lo, hi = expected_area(kind, cfg)
    seen = 0
    for seed in range(300):
        d = sample_damage(np.random.default_rng(seed), cfg)
        if d.kind != kind:      # train style draws square or circle at random
            continue
        seen += 1
        area = int(d.mask.sum())
        x1, y1, x2, y2 = d.bbox
        side = x2 - x1
        if kind == "square":
            assert area == side * side, (seed, side, area)
        elif kind == "circle":
            assert abs(area / (np.pi / 4 * side * side) - 1) < 0.02, (seed, side, area)
        else:
            assert area > (cfg.min_bbox // 2) ** 2, (seed, area)
            ys, xs = np.nonzero(d.mask)
            assert xs.min() >= x1 and xs.max() <= x2 and ys.min() >= y1 and ys.max() <= y2
        assert lo <= area <= hi
        out = apply_damage(gray, d)
        assert np.all(out[d.mask] == d.fill) and np.array_equal(out[~d.mask], gray[~d.mask])
    assert seen >= 100


def test_check_damage_areas_flags_a_broken_generator():
    import pandas as pd

    from utils.data.damage import check_damage_areas

    good = pd.DataFrame({"kind": ["square", "circle", "star"], "area": [114 * 114, 10000, 5000]})
    assert check_damage_areas(good)["ok"].all()
    broken = pd.DataFrame({"kind": ["square", "square"], "area": [114, 12996]})   # a square drawn as a line
    table = check_damage_areas(broken)
    assert not table["ok"].any() and table["outside"].iloc[0] == 1 and table["found min"].iloc[0] == 114
    with pytest.raises(ValueError, match="unknown damage kind"):
        check_damage_areas(pd.DataFrame({"kind": ["blob"], "area": [1]}))
