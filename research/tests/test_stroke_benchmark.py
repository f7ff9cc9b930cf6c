"""research/stroke_benchmark.py: the stroke damage is the same in every run, the three sets are scored for every
net with and without the minimum-hole rule, a net paired with itself differs by exactly 0, and a folder without
a held-out layout is refused with exit code 2."""
import json

import numpy as np
import pandas as pd
import pytest
from research_fixtures import ROOT, load_tool, sample_data  # noqa: F401  (a fixture)


def test_stroke_damage_is_seeded_by_crop():
    mod = load_tool("stroke_benchmark")
    gray = np.full((512, 512), 128, np.uint8)
    a, b, c = mod.stroke_damage(gray, 3, 7), mod.stroke_damage(gray, 3, 7), mod.stroke_damage(gray, 4, 7)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and not np.array_equal(a[1], c[1])
    assert a[1].any() and np.array_equal(a[0][~a[1]], gray[~a[1]]) and len(np.unique(a[0][a[1]])) == 1
    assert np.array_equal(gray, np.full((512, 512), 128, np.uint8))          # the input is kept


@pytest.mark.slow  # the mask net on 2 crops x 3 sets, twice; the inpainter on 2 stroke holes, twice; 4 restorations
def test_every_set_and_net_is_scored(sample_data, tmp_path, capsys):  # noqa: F811
    import shutil

    mod = load_tool("stroke_benchmark")
    again = tmp_path / "same_net"
    again.mkdir()
    for f in ("mask.safetensors", "mask.json", "inpaint.safetensors", "inpaint.json"):
        shutil.copy(ROOT / "weights" / f, again / f)
    out = tmp_path / "out"
    assert mod.main([str(sample_data), "--weights", str(ROOT / "weights"), "--candidate", str(again),
                     "--out", str(out), "--limit", "2", "--sweep", "--inpaint", "--colour"]) == 0
    table = pd.read_csv(out / "per_crop.csv")
    assert set(table.set) == set(mod.SETS) and len(table) == 4 * 3 * 2      # 4 variants, 3 sets, 2 crops
    assert set(table.net) == {"weights", "weights, no minimum hole", "same_net", "same_net, no minimum hole"}
    damaged = table[table.set != "undamaged"]
    assert damaged.iou.between(0, 1).all() and damaged.iou_raw.between(0, 1).all()
    result = json.loads((out / "stroke_benchmark.json").read_text())
    for s in ("polygons", "strokes"):
        assert result["masks"][f"same_net | {s}"]["iou_vs_reference"] == 0.0     # a net against itself
    undamaged = table[(table.net == "weights") & (table.set == "undamaged")]
    assert result["masks"]["weights | undamaged"]["false_holes"] == int((undamaged.area > 0).sum())
    sweep = pd.read_csv(out / "sweep.csv")
    assert {"false_holes", "strokes_missed_empty", "polygons_missed_half"} <= set(sweep.columns)
    off = sweep[(sweep.min_hole_prob == 0) & (sweep.min_hole_value_share == 0) & (sweep.min_confident_area == 0)]
    rows = table[table.net == "weights, no minimum hole"]
    assert off[off.net == "weights"].false_holes.item() == int((rows[rows.set == "undamaged"].area > 0).sum())
    holes = result["stroke_holes"]
    assert set(holes) == {"Telea", "inpainter, weights", "inpainter, same_net"}
    assert holes["inpainter, weights"]["masked_ssim"] == holes["inpainter, same_net"]["masked_ssim"]
    assert holes["inpainter, weights"]["vs_telea"] != 0.0 and "vs_telea" in holes["Telea"]
    # the colours: only the full weights folder (the candidate has no colour net), one row per stroke crop
    colour = pd.read_csv(out / "colour_per_crop.csv")
    assert list(colour.net) == ["weights", "weights"] and (colour[["hole", "ring", "elsewhere"]] >= 0).all().all()
    assert colour.score.between(0, 1).all() and set(result["stroke_colour"]) == {"weights"}
    assert result["stroke_colour"]["weights"]["ring"] == pytest.approx(colour.ring.mean())   # one crop per photo
    assert "false holes" in capsys.readouterr().out


def test_a_folder_without_the_held_out_layout_is_refused(tmp_path, capsys):
    mod = load_tool("stroke_benchmark")
    with pytest.raises(SystemExit) as e:
        mod.main([str(tmp_path), "--weights", str(ROOT / "weights")])
    assert e.value.code == 2 and "manifest.csv" in capsys.readouterr().err
