"""research/scene_overlap.py: which photos of a set show a scene that a training photo also shows."""
import json

import pandas as pd
import pytest
from PIL import Image, ImageOps
from research_fixtures import load_tool, sample_data  # noqa: F401  (sample_data: a fixture)

pytestmark = pytest.mark.slow      # builds a data set and runs the research tool on it


def test_scene_overlap_finds_the_training_photo_of_a_mirrored_copy_and_splits_scores(sample_data, tmp_path):
    """A mirrored copy of a training photo has that photo as its nearest training photo (cosine near 1, a seen
    scene), a test photo is further; scores are averaged per photo, then per group."""
    mod = load_tool("scene_overlap")
    man = pd.read_csv(sample_data / "manifest.csv")
    train = sorted(man[man.split == "train"].source.unique())
    other = sorted(man[man.split == "test"].source.unique())[0]
    mirrored = tmp_path / "mirrored.png"
    ImageOps.mirror(Image.open(train[0]).convert("RGB")).save(mirrored)
    t = mod.nearest_train(sample_data, [str(mirrored), other]).set_index("photo")
    assert t.loc[str(mirrored), "nearest_train"] == train[0] and t.loc[str(mirrored), "cosine"] > 0.9
    assert t.loc[other, "cosine"] < t.loc[str(mirrored), "cosine"]
    scores = {"image_photos": ["a", "a", "b", "c"], "per_image": {"v": [[0.2, 0, 0, 0.1], [0.4, 0, 0, 0.3],
                                                                         [0.9, 0, 0, 0.8], [0.5, 0, 0, 0.4]]}}
    s = mod.split_scores(json.loads(json.dumps(scores)), {"a"}, None).set_index("photos")
    assert s.loc["seen scene", "n"] == 1 and abs(s.loc["seen scene", "score"] - 0.3) < 1e-9
    assert s.loc["new scene", "n"] == 2 and abs(s.loc["new scene", "hue"] - 0.6) < 1e-9
