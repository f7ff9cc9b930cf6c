import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import utils
from utils import DataError


@pytest.fixture
def data_copy(sample_data, tmp_path):
    dst = tmp_path / "d"
    shutil.copytree(sample_data, dst)
    return dst


def test_layout_reads(sample_data):
    tr, te = utils.load_train_table(sample_data), utils.load_test_table(sample_data)
    assert len(tr) == 12 and len(te) == 4
    assert tr["input_image_path"][0].name == "TRAIN_00000.png" and tr["input_image_path"][0].is_absolute()
    assert utils.check_images(tr["gt_image_path"], "RGB") == []
    assert utils.check_images(te["input_image_path"], "L") == []


def test_data_dir_from_environment(sample_data, monkeypatch):
    monkeypatch.setenv("IMAGE_RESTORE_DATA", str(sample_data))
    assert utils.resolve_data_dir() == sample_data.resolve()
    assert len(utils.load_test_table()) == 4


def test_missing_column(data_copy):
    pd.DataFrame({"path": ["./test_input/TEST_000.png"]}).to_csv(data_copy / "test.csv", index=False)
    with pytest.raises(DataError, match=r"test.csv.*input_image_path"):
        utils.load_test_table(data_copy)


def test_missing_file_raise_or_skip(data_copy):
    (data_copy / "train_gt" / "TRAIN_00003.png").unlink()
    with pytest.raises(DataError, match="TRAIN_00003.png: file not found"):
        utils.load_train_table(data_copy)
    df = utils.load_train_table(data_copy, on_error="skip")
    assert len(df) == 11 and "TRAIN_00003" in df.attrs["problems"][0]


def test_truncated_wrong_mode_wrong_size(data_copy):
    p = data_copy / "train_gt" / "TRAIN_00001.png"
    p.write_bytes(p.read_bytes()[:500])
    with pytest.raises(DataError, match="TRAIN_00001.png: unreadable or truncated"):
        utils.read_image(p, "RGB", 512)
    q = data_copy / "train_gt" / "TRAIN_00002.png"
    Image.fromarray(np.zeros((512, 512), np.uint8)).save(q)
    with pytest.raises(DataError, match="TRAIN_00002.png: mode L, expected RGB"):
        utils.read_image(q, "RGB", 512)
    r = data_copy / "train_gt" / "TRAIN_00004.png"
    Image.fromarray(np.zeros((100, 80, 3), np.uint8)).save(r)
    with pytest.raises(DataError, match="TRAIN_00004.png: size 80x100"):
        utils.read_image(r, "RGB", 512)
    table = utils.load_train_table(data_copy)
    problems = utils.check_images(table["gt_image_path"], "RGB", on_error="skip")
    assert len(problems) == 3
    # the dataset names a bad file, or skips it and reports it
    ds = utils.SyntheticDamageDataset(table["gt_image_path"])
    with pytest.raises(DataError, match="TRAIN_00001.png"):
        ds.sample(1)
    ds = utils.SyntheticDamageDataset(table["gt_image_path"], on_error="skip")
    assert ds.sample(1)["rgb"].shape == (512, 512, 3) and "TRAIN_00001.png" in ds.skipped[0]


def test_provided_pairs_recover_mask_exactly(sample_data):
    ds = utils.ProvidedPairsDataset(utils.load_train_table(sample_data))
    s = ds.sample(0)
    # train-style damage: a ~140 px near-black square or circle
    assert 80 < np.sqrt(s["mask"].sum()) < 200
    assert s["gray"][s["mask"]].max() <= 8
    assert np.array_equal(s["gray"][~s["mask"]], s["clean_gray"][~s["mask"]])


def test_sample_builder_layout(sample_data):
    man = pd.read_csv(sample_data / "manifest.csv")
    assert set(man["split"]) == {"train", "test"}
    train_src = set(man[man.split == "train"]["source"])
    test_src = set(man[man.split == "test"]["source"])
    assert not train_src & test_src  # test photos held out
    for name in man[man.split == "test"]["name"]:
        gt = utils.read_image(sample_data / "test_gt" / name, "RGB", 512)
        inp = utils.read_image(sample_data / "test_input" / name, "L", 512)
        mask = utils.read_image(sample_data / "test_mask" / name, "L", 512) > 0
        assert np.array_equal(inp[~mask], utils.gray_of(gt)[~mask])
        assert len(np.unique(inp[mask])) == 1
    with pytest.raises(FileExistsError):
        utils.build_sample_dataset(sample_data)
