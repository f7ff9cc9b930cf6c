import cv2
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


STROKES = DamageConfig(stroke_share=1.0)


def _distance_to_polyline(points, size: int) -> np.ndarray:
    """Each pixel centre's Euclidean distance to the polyline through `points` ((x, y) pairs), from its geometry."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    best = np.full((size, size), np.inf)
    for (ax, ay), (bx, by) in zip(points[:-1].astype(float), points[1:].astype(float)):
        dx, dy = bx - ax, by - ay
        t = np.clip(((xs - ax) * dx + (ys - ay) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
        best = np.minimum(best, np.hypot(xs - ax - t * dx, ys - ay - t * dy))
    return best


@pytest.mark.parametrize("seed", range(30))
def test_strokes_have_the_promised_counts_widths_and_fill(seed):
    from utils.data.damage import draw_stroke, expected_area

    d = sample_damage(np.random.default_rng(seed), STROKES)
    assert d.kind == "strokes"
    assert STROKES.stroke_count[0] <= len(d.strokes) <= STROKES.stroke_count[1]
    lo, hi = expected_area("strokes", STROKES)
    assert lo <= d.mask.sum() <= hi
    painted = np.zeros_like(d.mask)
    for points, width in d.strokes:
        assert STROKES.stroke_width[0] <= width <= STROKES.stroke_width[1]
        assert STROKES.stroke_vertices[0] <= len(points) <= STROKES.stroke_vertices[1]
        assert points.min() >= 0 and points.max() <= 511
        one = draw_stroke(points, width, 512)
        # the brush's width, measured against the polyline's geometry: every painted pixel lies within width/2 of
        # it, and every point of it has a disc of that width painted around it (within a pixel: rasterised)
        far = _distance_to_polyline(points, 512)
        assert far[one].max() <= width / 2 + 1.0, (width, far[one].max())
        inside = cv2.distanceTransform(np.pad(one, width, constant_values=True).astype(np.uint8), cv2.DIST_L2,
                                       5)[width:-width, width:-width]       # (beyond the image counts as painted)
        on_line = far <= 0.5
        assert inside[on_line].min() >= width / 2 - 1.0, (width, inside[on_line].min())
        painted |= one
    assert np.array_equal(painted, d.mask)          # the mask is the union of the strokes, nothing else
    x1, y1, x2, y2 = d.bbox
    ys, xs = np.nonzero(d.mask)
    assert (x1, y1, x2, y2) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_a_straight_stroke_is_exactly_its_width_across():
    from utils.data.damage import draw_stroke

    for width in (1, 2, 5, 12, 28):
        m = draw_stroke([(100, 256), (400, 256)], width, 512)
        assert m[:, 250].sum() == width and m[256, 100:401].all() and not m[256, :100 - width].any()


def test_strokes_are_white_black_or_one_gray_value_by_weight():
    fills = [sample_damage(np.random.default_rng(s), STROKES).fill for s in range(150)]
    white, black = fills.count(255), fills.count(0)
    gray = [f for f in fills if f not in (0, 255)]
    assert white > 20 and black > 20 and len(gray) > 20     # one third each, by the default weights
    only_white = DamageConfig(stroke_share=1.0, stroke_fills={"white": 1.0})
    assert {sample_damage(np.random.default_rng(s), only_white).fill for s in range(20)} == {255}
    grays = DamageConfig(stroke_share=1.0, stroke_fills={"gray": 1.0}, fill_range=(90, 99))
    assert {sample_damage(np.random.default_rng(s), grays).fill for s in range(30)} <= set(range(90, 100))


def test_stroke_mask_equals_the_changed_pixels_and_input_is_kept():
    gray = np.random.default_rng(1).integers(1, 255, (512, 512), dtype=np.uint8)   # no pixel is 0 or 255
    cfg = DamageConfig(stroke_share=1.0, stroke_fills={"white": 1.0, "black": 1.0})
    for seed in range(10):
        before = gray.copy()
        d = sample_damage(np.random.default_rng(seed), cfg)
        out = apply_damage(gray, d)
        assert np.array_equal(out != gray, d.mask) and np.all(out[d.mask] == d.fill)
        assert np.array_equal(gray, before)


def test_strokes_are_reproducible_with_a_seed_and_configurable():
    a, b = (sample_damage(np.random.default_rng(11), STROKES) for _ in range(2))
    assert np.array_equal(a.mask, b.mask) and a.fill == b.fill
    assert [(p.tolist(), w) for p, w in a.strokes] == [(p.tolist(), w) for p, w in b.strokes]
    assert not np.array_equal(a.mask, sample_damage(np.random.default_rng(12), STROKES).mask)
    thin = DamageConfig(stroke_share=1.0, stroke_count=(3, 3), stroke_width=(2, 3))
    for s in range(10):
        d = sample_damage(np.random.default_rng(s), thin)
        assert len(d.strokes) == 3 and {w for _, w in d.strokes} <= {2, 3}


def test_stroke_share_mixes_strokes_and_leaves_the_default_unchanged():
    mixed = DamageConfig(stroke_share=0.5, train_style_share=0.2)
    kinds = [sample_damage(np.random.default_rng(s), mixed).kind for s in range(200)]
    share = {k: kinds.count(k) / len(kinds) for k in ("strokes", "square", "circle")}
    assert 0.4 < share["strokes"] < 0.6 and 0.11 < share["square"] + share["circle"] < 0.29   # about 3 sd
    assert "strokes" not in {sample_damage(np.random.default_rng(s)).kind for s in range(40)}
    # a config without strokes draws exactly as before: the same random numbers, the same polygons
    assert np.array_equal(sample_damage(np.random.default_rng(3), DamageConfig(stroke_share=0.0)).mask,
                          sample_damage(np.random.default_rng(3)).mask)


@pytest.mark.parametrize("bad, match", [
    ({"stroke_share": 0.7, "train_style_share": 0.5}, "add up to at most 1"),
    ({"stroke_share": -0.1}, "must be >= 0"),
    ({"stroke_width": (5, 2)}, "stroke_width"),
    ({"stroke_vertices": (1, 4)}, "stroke_vertices"),
    ({"stroke_share": 0.5, "stroke_step": (20, 300)}, "half the image size"),
    ({"stroke_fills": {"red": 1.0}}, "stroke_fills"),
    ({"stroke_fills": {"white": 0.0}}, "stroke_fills"),
])
def test_bad_stroke_configs_are_clear_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        DamageConfig(**bad)


def test_training_set_mixes_strokes_in_and_validation_stays_polygons(sample_data):
    run = utils.prepare_run(sample_data, "cpu", max_train=4, max_val=2)
    train, val = utils.train_val_datasets(run["train_paths"], run["val_paths"], 64, train_style_share=0.0,
                                          stroke_share=1.0)
    assert train.damage.stroke_share == 1.0 and {train.sample(i)["kind"] for i in range(4)} == {"strokes"}
    assert val.damage == DamageConfig() and "strokes" not in {val.sample(i)["kind"] for i in range(len(val))}
    default, _ = utils.train_val_datasets(run["train_paths"], run["val_paths"], 64)
    assert default.damage.stroke_share == 0.0


def test_stroke_share_reaches_the_inpainter_and_the_command_line(sample_data):
    import runpy

    from conftest import ROOT

    config = utils.InpaintConfig.preset("smoke", max_train=4, val_count=1, stroke_share=0.5, pretrained="none")
    _, train_ds, _ = utils.stage_data(config, sample_data, "cpu")
    assert isinstance(train_ds, utils.InpaintDataset) and train_ds.base.damage.stroke_share == 0.5
    parse = runpy.run_path(str(ROOT / "tools" / "train.py"), run_name="cli_under_test")["parse"]
    _, config = parse(["--stage", "inpaint", "--data-dir", str(sample_data), "--stroke-share", "0.4"])
    assert config.stroke_share == 0.4
    assert parse(["--stage", "mask", "--data-dir", str(sample_data)])[1].stroke_share == 0.0    # the competition's
