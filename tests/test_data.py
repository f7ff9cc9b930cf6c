import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
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
    with pytest.raises(DataError, match=r"TRAIN_00002.png: mode L, expected RGB .*train.csv.*\(and 1 more bad file"):
        utils.load_train_table(data_copy)       # the headers are checked up front (the truncated one decodes later)
    table = utils.load_train_table(data_copy, check=False)
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


@pytest.mark.slow
def test_train_source_provided_and_both(sample_data, tmp_path):
    """train_source='provided' trains on the data set's own pairs: the mask target is exactly the pixels where
    train_input differs from gray(train_gt), flipped together with the pair; 'both' joins it to synthetic damage."""
    run = utils.prepare_run(sample_data, "cpu")
    table = run["train_table"]
    assert len(table) == len(run["train_paths"]) and list(table["gt_image_path"]) == run["train_paths"]
    train, val = utils.train_val_datasets(
        run["train_paths"], run["val_paths"], 128, train_source="provided", train_table=table
    )
    assert isinstance(train, utils.ProvidedPairsDataset) and len(train) == len(table)
    flipped = 0
    for epoch in range(3):
        train.set_epoch(epoch)
        for i in range(len(train)):
            s = train.sample(i)
            raw_in = utils.read_image(table["input_image_path"][i], "L")
            raw_gt = utils.read_image(table["gt_image_path"][i], "RGB")
            hole = raw_in != utils.gray_of(raw_gt)
            if np.array_equal(s["gray"], raw_in):
                assert np.array_equal(s["mask"], hole) and np.array_equal(s["rgb"], raw_gt)
            else:
                flipped += 1
                assert np.array_equal(s["gray"], raw_in[:, ::-1]) and np.array_equal(s["mask"], hole[:, ::-1])
            assert s["kind"] == "provided" and s["fill"] <= 8 and 80 < np.sqrt(s["mask"].sum()) < 200
    assert 0 < flipped < 3 * len(train)
    item = train[0]
    assert item["gray"].shape == (1, 128, 128) and item["rgb"].shape == (3, 128, 128) and 0 < item["mask"].mean() < 0.2
    assert val.fixed and not any(k in ("square", "circle") for k in (val.sample(i)["kind"] for i in range(len(val))))
    # a few training steps on the provided pairs, through fit
    hist = utils.fit(
        utils.MaskStage(image_size=128), train, 1, tmp_path, batch_size=2, steps_per_epoch=2, progress=False
    )
    assert hist[-1]["images"] == 4 and np.isfinite(hist[-1]["train_loss"])

    both, _ = utils.train_val_datasets(
        run["train_paths"], run["val_paths"], 128, train_source="both", train_table=table
    )
    n = len(run["train_paths"])
    assert len(both) == 2 * n and both.sample(n)["kind"] == "provided" and both.sample(0)["kind"] != "provided"
    both.set_epoch(2)
    assert both.parts[0].epoch == both.parts[1].epoch == 2
    assert torch.equal(both[n]["mask"], both.parts[1][0]["mask"])
    with pytest.raises(ValueError, match="train_table"):
        utils.train_val_datasets(run["train_paths"], run["val_paths"], 128, train_source="provided")
    with pytest.raises(ValueError, match="train_source"):
        utils.train_val_datasets(run["train_paths"], run["val_paths"], 128, train_source="real")


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


def test_sample_dataset_train_squares_are_filled(sample_data):
    """Every train-style hole of the built dataset has the area its kind promises."""
    from utils.data.damage import check_damage_areas

    man = pd.read_csv(sample_data / "manifest.csv")
    train = man[man.split == "train"]
    assert (man["builder_version"] == utils.sample_data.BUILDER_VERSION).all()
    assert {"square", "circle"} == set(train["damage"])
    ds = utils.ProvidedPairsDataset(utils.load_train_table(sample_data))
    areas = [int(ds.sample(i)["mask"].sum()) for i in range(len(ds))]
    table = check_damage_areas(pd.DataFrame({"kind": list(train["damage"]), "area": areas}), tolerance=0.5)
    assert table["ok"].all(), table


def test_stale_sample_dataset_is_rebuilt_or_flagged(tmp_path, capsys):
    data = utils.build_sample_dataset(tmp_path / "bundled", n_train=2, n_test=1, seed=3)
    man = pd.read_csv(data / "manifest.csv").drop(columns="builder_version")  # as builder 1 wrote it
    man.to_csv(data / "manifest.csv", index=False)
    assert utils.sample_data.builder_version(data) == 0
    utils.ensure_dataset(data, n_train=2, n_test=1, seed=3)
    assert "older builder" in capsys.readouterr().out
    assert utils.sample_data.builder_version(data) == utils.sample_data.BUILDER_VERSION
    # built from the user's own photos: not rebuilt behind their back, a clear error instead
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, src in enumerate(utils.builtin_photo_paths()[:3]):
        (photos / f"mine_{i}{src.suffix}").write_bytes(src.read_bytes())
    own = utils.build_sample_dataset(tmp_path / "own", photos=photos, n_train=2, n_test=1)
    before = (own / "train.csv").read_bytes()
    man = pd.read_csv(own / "manifest.csv")
    man["builder_version"] = 1
    man.to_csv(own / "manifest.csv", index=False)
    with pytest.raises(utils.DataError, match="older dataset builder.*overwrite=True"):
        utils.ensure_dataset(own)
    assert (own / "train.csv").read_bytes() == before
    # a dataset without manifest (the competition's) is left alone
    (own / "manifest.csv").unlink()
    assert utils.ensure_dataset(own) == own


@pytest.mark.slow
def test_photo_crops_are_drawn_afresh_each_epoch(tmp_path):
    """train_source='photos': item i of epoch e is a 512 crop of photo i % n at a random position, scale and flip,
    seeded by (seed, e, i): the same item twice is the same crop, another epoch another crop, and the crop is a
    window of the photo (no upsampling when its short side is 512)."""
    rng = np.random.default_rng(0)
    photo = (rng.random((512, 900, 3)) * 255).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "wide.png")
    big = cv2.resize(photo, (1800, 1024), interpolation=cv2.INTER_CUBIC)
    Image.fromarray(big).save(tmp_path / "big.jpg", quality=95)
    ds = utils.PhotoCropDataset([tmp_path / "wide.png", tmp_path / "big.jpg"], seed=3, scale=(1.0, 3.0), repeats=3)
    assert len(ds) == 6
    a, b = ds.sample(0), ds.sample(0)
    assert np.array_equal(a["rgb"], b["rgb"]) and a["rgb"].shape == (512, 512, 3)
    assert np.array_equal(a["clean_gray"], utils.gray_of(a["rgb"])) and a["mask"].any()
    seen = set()
    for epoch in range(4):
        ds.set_epoch(epoch)
        crop = ds.sample(0)["rgb"]  # photo 0 is 512 high: every crop is an exact window (maybe flipped)
        hits = [
            x
            for x in range(900 - 512 + 1)
            for img in (photo, photo[:, ::-1])
            if np.array_equal(img[:, x : x + 512], crop)
        ]
        assert hits, f"epoch {epoch}: the crop is not a window of the photo"
        seen.add(crop.tobytes())
    assert len(seen) > 1
    ds.set_epoch(0)
    c0 = ds.sample(1)["rgb"]
    ds.set_epoch(1)
    assert not np.array_equal(c0, ds.sample(1)["rgb"])
    assert min(ds.photo(1).shape[:2]) == 1024  # kept at most 512 x scale[1] (here its own 1024)
    with pytest.raises(ValueError, match="scale"):
        utils.PhotoCropDataset([tmp_path / "wide.png"], scale=(2.0, 1.0))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="broken.jpg"):
        utils.PhotoCropDataset([tmp_path / "broken.jpg"]).sample(0)


def test_train_photo_paths_leave_out_validation_photos(sample_data, tmp_path):
    """By default the photos are the manifest's sources of the train split, less every photo with a crop in the
    validation split; a folder of one's own photos is used as it is; problems name the file."""
    run = utils.prepare_run(sample_data, "cpu")
    man = pd.read_csv(sample_data / "manifest.csv").set_index("name")["source"]
    of = lambda paths: {man[p.name] for p in paths}  # noqa: E731
    photos = utils.train_photo_paths(sample_data, run["train_paths"], run["val_paths"])
    assert photos and {str(p) for p in photos} == of(run["train_paths"]) - of(run["val_paths"])
    train, val = utils.train_val_datasets(
        run["train_paths"], run["val_paths"], 128, train_source="photos", data_dir=sample_data, repeats=2
    )
    assert isinstance(train, utils.PhotoCropDataset) and len(train) == 2 * len(photos)
    assert train[0]["rgb"].shape == (3, 128, 128) and val.fixed
    folder = tmp_path / "mine"
    folder.mkdir()
    shutil.copy(photos[0], folder / "one.png")
    assert utils.train_photo_paths(sample_data, run["train_paths"], run["val_paths"], folder) == [folder / "one.png"]
    with pytest.raises(DataError, match="manifest.csv"):
        utils.train_photo_paths(tmp_path, run["train_paths"], run["val_paths"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no photos"):
        utils.train_photo_paths(sample_data, run["train_paths"], run["val_paths"], empty)
    with pytest.raises(ValueError, match="photos"):
        utils.train_val_datasets(run["train_paths"], run["val_paths"], 128, train_source="photos")
    listed = tmp_path / "list.txt"  # a list file: one path per line, in its order; '#' lines skipped
    listed.write_text(f"# two photos\n{photos[1]}\n\n{folder / 'one.png'}\n")
    assert utils.train_photo_paths(sample_data, run["train_paths"], run["val_paths"], listed) == [
        photos[1],
        folder / "one.png",
    ]
    listed.write_text(f"{photos[1]}\n{tmp_path / 'gone.jpg'}\n")
    with pytest.raises(DataError, match=r"list.txt, line 2: .*gone.jpg: photo not found"):
        utils.train_photo_paths(sample_data, run["train_paths"], run["val_paths"], listed)
    with pytest.raises(DataError, match="photo list not found"):
        utils.train_photo_paths(sample_data, run["train_paths"], run["val_paths"], tmp_path / "nothing.txt")


def test_own_photos_are_checked_before_anything_is_written(tmp_path, capsys):
    """Bug 1: photos that cannot be colour ground truths (unreadable, truncated, too small, gray, a transparent
    cut-out) are named with the reason and left out before anything is written; none usable is a DataError naming
    the folder, and nothing is written."""
    bundled = utils.builtin_photo_paths()
    photos = tmp_path / "photos"
    photos.mkdir()
    for src in bundled[:3]:
        shutil.copy(src, photos / src.name)
    (photos / "broken.jpg").write_bytes(b"not a jpeg at all")
    (photos / "truncated.jpg").write_bytes(bundled[3].read_bytes()[:3000])
    rgb = utils.read_image(bundled[0], "RGB")
    Image.fromarray(rgb[:40, :40]).save(photos / "tiny.png")
    Image.fromarray(rgb).convert("L").save(photos / "gray.png")
    cut = np.dstack([rgb, np.zeros(rgb.shape[:2], np.uint8)])
    cut[100:200, 100:200, 3] = 255  # a cut-out: mostly transparent
    Image.fromarray(cut, "RGBA").save(photos / "cutout.png")
    opaque = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    Image.fromarray(opaque, "RGBA").save(photos / "opaque.png")  # alpha everywhere opaque: a photo
    out = utils.build_sample_dataset(tmp_path / "mine", photos=photos, n_train=3, n_test=1)
    printed = capsys.readouterr().out
    for name, why in [
        ("broken.jpg", "unreadable"),
        ("truncated.jpg", "unreadable or truncated"),
        ("tiny.png", "too small"),
        ("gray.png", "gray"),
        ("cutout.png", "transparent"),
    ]:
        assert f"left out {photos / name}: {why}" in printed, printed
    assert "4 of 9 photos usable, 5 left out" in printed
    sources = {Path(s).name for s in pd.read_csv(out / "manifest.csv")["source"]}
    assert sources == {p.name for p in bundled[:3]} | {"opaque.png"}
    # none usable: a DataError naming the folder and the reasons; nothing written
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("broken.jpg", "gray.png", "tiny.png"):
        shutil.copy(photos / name, bad / name)
    with pytest.raises(
        DataError,
        match=r"bad: no usable colour photo \(3 found: broken.jpg: unreadable.*gray.png: "
        r"gray",
    ):
        utils.build_sample_dataset(tmp_path / "none", photos=bad, n_train=None, n_test=None)
    assert not (tmp_path / "none").exists()
    shutil.copy(photos / bundled[0].name, bad / bundled[0].name)  # one usable photo: no split possible
    with pytest.raises(DataError, match="need at least 2 usable photos"):
        utils.build_sample_dataset(tmp_path / "none", photos=bad)
    assert not (tmp_path / "none").exists()
    with pytest.raises(DataError, match="photos"):  # a list of paths is checked too
        utils.build_sample_dataset(tmp_path / "none", photos=[photos / "broken.jpg", photos / "gray.png"])
    assert not (tmp_path / "none").exists()
    before = {f: f.read_bytes() for f in out.rglob("*") if f.is_file()}
    with pytest.raises(DataError, match="need at least 2 usable photos"):  # a rebuild that fails keeps the old one
        utils.build_sample_dataset(out, photos=bad, overwrite=True)
    assert {f: f.read_bytes() for f in out.rglob("*") if f.is_file()} == before


def test_image_headers_are_checked_up_front(data_copy):
    """Bug 2: a wrong size or mode anywhere in train/test is found when the table is loaded (before training starts:
    prepare_run, notebooks 01 and 05), naming the file and the problem and how many more are bad; 16-bit gray is
    fine (it decodes to L)."""
    Image.fromarray(np.zeros((512, 600, 3), np.uint8)).save(data_copy / "train_gt" / "TRAIN_00005.png")
    Image.fromarray(np.zeros((512, 512, 3), np.uint8)).save(data_copy / "train_input" / "TRAIN_00007.png")
    (data_copy / "train_gt" / "TRAIN_00009.png").write_bytes(b"garbage")
    with pytest.raises(
        DataError,
        match=r"train_input/TRAIN_00007.png: mode RGB, expected L \(listed in train.csv as "
        r"input_image_path\) \(and 2 more bad file",
    ):
        utils.load_train_table(data_copy)
    with pytest.raises(DataError, match="TRAIN_00007.png: mode RGB"):
        utils.prepare_run(data_copy, "cpu")
    df = utils.load_train_table(data_copy, on_error="skip")
    assert len(df) == 9 and any("TRAIN_00005.png: size 600x512, expected 512x512" in p for p in df.attrs["problems"])
    assert any("TRAIN_00009.png: unreadable image" in p for p in df.attrs["problems"])
    Image.fromarray(np.zeros((256, 256), np.uint8)).save(data_copy / "test_input" / "TEST_001.png")
    with pytest.raises(DataError, match=r"TEST_001.png: size 256x256, expected 512x512 \(listed in test.csv"):
        utils.load_test_table(data_copy)
    Image.fromarray(np.full((512, 512), 30000, np.uint16)).save(data_copy / "test_input" / "TEST_001.png")
    assert Image.open(data_copy / "test_input" / "TEST_001.png").mode.startswith("I")
    assert len(utils.load_test_table(data_copy)) == 4
    gts = [data_copy / "train_gt" / f"TRAIN_{i:05d}.png" for i in range(12)]
    bad = utils.datasets.check_headers(gts * 30, "RGB", workers=4)  # in a thread pool
    assert bad.keys() == {gts[5], gts[9]}


def test_duplicate_rows_are_refused_at_load_time(data_copy):
    """Bug 3: a path listed twice in test.csv (or train.csv's inputs or ground truths) is a DataError naming the csv,
    the value and its lines, not a failure while writing the zip."""
    test_csv = data_copy / "test.csv"
    test_csv.write_text(
        "input_image_path\n./test_input/TEST_000.png\n./test_input/TEST_001.png\ntest_input/TEST_000.png\n"
    )
    with pytest.raises(
        DataError,
        match=r"test.csv: input_image_path \./test_input/TEST_000.png = "
        r"test_input/TEST_000.png is listed 2 times, on lines 2, 4",
    ):
        utils.load_test_table(data_copy)
    (data_copy / "test_input" / "other").mkdir()
    shutil.copy(data_copy / "test_input" / "TEST_001.png", data_copy / "test_input" / "other" / "TEST_001.png")
    test_csv.write_text(
        "input_image_path\n./test_input/TEST_000.png\n./test_input/TEST_001.png\n./test_input/other/TEST_001.png\n"
    )  # one output name for two inputs
    with pytest.raises(DataError, match=r"test.csv: .*TEST_001.png is listed 2 times, on lines 3, 4"):
        utils.load_test_table(data_copy)
    lines = (data_copy / "train.csv").read_text().splitlines()
    gt0 = lines[1].split(",")[1]
    (data_copy / "train.csv").write_text("\n".join(lines + [lines[3].split(",")[0] + "," + gt0]) + "\n")
    with pytest.raises(
        DataError,
        match=r"train.csv: input_image_path \./train_input/TRAIN_00002.png is listed 2 times, "
        r"on lines 4, 14",
    ):
        utils.load_train_table(data_copy)
    (data_copy / "train.csv").write_text("\n".join(lines + ["./train_input/TRAIN_00099.png," + gt0]) + "\n")
    with pytest.raises(
        DataError,
        match=r"train.csv: gt_image_path \./train_gt/TRAIN_00000.png is listed 2 times, "
        r"on lines 2, 14",
    ):
        utils.load_train_table(data_copy)


def test_heldout_crops_names_each_crops_photo_and_refuses_a_bad_folder(sample_data, tmp_path):
    names, photos = utils.heldout_crops(sample_data, ("test_input", "test_gt"))
    assert names == [Path(p).name for p in utils.load_test_table(sample_data).input_image_path]
    man = pd.read_csv(sample_data / "manifest.csv")
    from_manifest = dict(zip(man.name, man.source))
    assert all(photos[n] == str(from_manifest.get(n, n)) for n in names)
    assert utils.heldout_crops(sample_data, ("test_input", "test_gt"), limit=2)[0] == names[:2]
    copy = tmp_path / "heldout"
    shutil.copytree(sample_data, copy, ignore=shutil.ignore_patterns("test_gt"))
    with pytest.raises(DataError, match="test_gt: not found"):
        utils.heldout_crops(copy)
    with pytest.raises(DataError, match="at least 2 test images"):
        utils.heldout_crops(sample_data, limit=1)
