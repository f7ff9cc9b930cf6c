"""research/colour_frontier.py: paired differences are averaged per photo first, their interval is over photos;
a folder without ground truth or a bad option is refused with exit code 2."""
import numpy as np
import pandas as pd
import pytest
from research_fixtures import load_tool
from scipy import stats


def test_paired_differences_are_per_photo_with_a_t_interval_over_photos():
    mod = load_tool("colour_frontier")
    names = ["a", "b", "c", "d", "e"]
    photos = ["p", "p", "q", "r", "r"]
    base = np.zeros((5, len(mod.TERMS)))
    other = base.copy()
    other[:, 0] = [0.1, 0.3, 0.0, 0.4, 0.2]        # score: photo p +0.2, q 0, r +0.3
    idx = pd.MultiIndex.from_product([["base", "other"], names], names=["setting", "name"])
    values = pd.DataFrame(np.vstack([base, other]), index=idx, columns=list(mod.TERMS))
    d = mod.paired(values, "base", photos)
    per_photo = np.array([0.2, 0.0, 0.3])
    half = stats.t.ppf(0.975, 2) * per_photo.std(ddof=1) / np.sqrt(3)
    assert d.loc["other", "d_score"] == pytest.approx(per_photo.mean())      # not the mean over the 5 crops (0.2)
    assert d.loc["other", "d_score_hi"] - d.loc["other", "d_score"] == pytest.approx(half)
    assert d.loc["base", "d_score"] == 0 and d.loc["other", "d_hue"] == 0


def test_bad_inputs_are_refused(tmp_path, capsys):
    mod = load_tool("colour_frontier")
    assert mod.main(["--data-dir", str(tmp_path)]) == 2
    assert "test_input" in capsys.readouterr().err
    for sub in ("test_input", "test_gt", "test_mask"):
        (tmp_path / sub).mkdir()
    assert mod.main(["--data-dir", str(tmp_path), "--extra", "old"]) == 2
    assert "NAME=DIR" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        mod.main(["--data-dir", str(tmp_path), "--strengths", "0,1.5"])
    assert e.value.code == 2
