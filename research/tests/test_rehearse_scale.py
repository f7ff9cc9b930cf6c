"""research/rehearse_scale.py build: the competition's layout at any size, train-style inputs damaged afresh,
reused ground truths hard-linked, a resumed build equal to an uninterrupted one."""
import os

import numpy as np
import pandas as pd
import pytest
from research_fixtures import load_tool, sample_data  # noqa: F401  (sample_data: a fixture)

import utils

pytestmark = pytest.mark.slow      # builds a data set and runs the research tool on it

rehearse = load_tool("rehearse_scale")


def test_build_layout_hard_links_and_resume(sample_data, tmp_path):
    n_gt = len(list((sample_data / "train_gt").glob("*.png")))
    pairs = n_gt + 6
    out = tmp_path / "rehearsal"
    info = rehearse.build(sample_data, out, pairs=pairs, n_test=3)
    assert info["train_pairs"] == pairs and info["distinct_ground_truths"] == n_gt and info["disk_gb"] >= 0
    train = pd.read_csv(out / "train.csv")
    assert list(train.columns) == ["input_image_path", "gt_image_path"] and len(train) == pairs
    assert train.input_image_path[0] == "./train_input/TRAIN_00000.png"
    assert pd.read_csv(out / "test.csv").input_image_path.tolist() == [f"./test_input/TEST_00{i}.png" for i in range(3)]
    table = utils.load_train_table(out)
    # a reused ground truth is a hard link of the first copy; its input is damaged afresh
    first, reused = table.gt_image_path[0], table.gt_image_path[n_gt]
    assert os.stat(first).st_ino == os.stat(reused).st_ino
    inputs = [utils.read_image(p, "L") for p in table.input_image_path[[0, n_gt]]]
    assert not np.array_equal(*inputs)
    for i in range(pairs):                                  # train style: one ~140 px near-black square or circle
        s = utils.ProvidedPairsDataset(table).sample(i)
        assert 100 ** 2 * 0.7 < s["mask"].sum() <= 170 ** 2 and s["gray"][s["mask"]].max() <= 8
    test_in = utils.read_image(out / "test_input" / "TEST_000.png", "L")
    test_mask = utils.read_image(out / "test_mask" / "TEST_000.png", "L") > 0
    assert test_mask.any() and np.array_equal(
        test_in[~test_mask], utils.gray_of(utils.read_image(out / "test_gt" / "TEST_000.png", "RGB"))[~test_mask]
    )
    # a complete layout is not overwritten; an interrupted one resumes and writes the same files
    with pytest.raises(SystemExit, match="already there"):
        rehearse.build(sample_data, out, pairs=pairs, n_test=3)
    victim = out / "train_input" / f"TRAIN_{n_gt + 2:05d}.png"
    before = victim.read_bytes()
    victim.unlink()
    (out / "train.csv").unlink()
    again = rehearse.build(sample_data, out, pairs=pairs, n_test=3)
    assert again["inputs_written_this_run"] == 1 and victim.read_bytes() == before
    with pytest.raises(SystemExit, match="corpus"):
        rehearse.build(sample_data, sample_data, pairs=2)
