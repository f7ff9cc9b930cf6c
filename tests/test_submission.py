import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import utils
from utils.inference.submission import SubmissionError


@pytest.fixture
def test_csv(tmp_path):
    p = tmp_path / "test.csv"
    pd.DataFrame({"input_image_path": [f"./test_input/TEST_{i:03d}.png" for i in range(3)]}).to_csv(p, index=False)
    return p


def good_images():
    rng = np.random.default_rng(0)
    return {f"TEST_{i:03d}.png": rng.integers(0, 256, (512, 512, 3), dtype=np.uint8) for i in range(3)}


def png(arr, mode=None):
    buf = io.BytesIO()
    im = Image.fromarray(arr)
    (im.convert(mode) if mode else im).save(buf, format="PNG")
    return buf.getvalue()


def make_zip(path, entries):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def test_valid_zip_round_trip(tmp_path, test_csv):
    z = utils.write_submission_zip(good_images(), tmp_path / "sub.zip")
    assert utils.validate_submission(z, test_csv) == [f"TEST_{i:03d}.png" for i in range(3)]
    with zipfile.ZipFile(z) as zf:
        back = np.asarray(Image.open(io.BytesIO(zf.read("TEST_001.png"))))
    assert np.array_equal(back, good_images()["TEST_001.png"])


@pytest.mark.parametrize("case,match", [
    ("missing", "missing"),
    ("extra", "unexpected"),
    ("misnamed", "missing"),
    ("folder", "inside a folder"),
    ("size", "256x256"),
    ("mode", "mode L"),
    ("corrupt", "not a readable PNG"),
    ("jpeg", "not PNG"),
])
def test_malformed_zips_rejected(tmp_path, test_csv, case, match):
    imgs = good_images()
    entries = {n: png(a) for n, a in imgs.items()}
    if case == "missing":
        del entries["TEST_002.png"]
    elif case == "extra":
        entries["TEST_003.png"] = entries["TEST_000.png"]
    elif case == "misnamed":
        entries["test_002.png"] = entries.pop("TEST_002.png")
    elif case == "folder":
        entries["sub/TEST_002.png"] = entries.pop("TEST_002.png")
    elif case == "size":
        entries["TEST_001.png"] = png(imgs["TEST_001.png"][:256, :256])
    elif case == "mode":
        entries["TEST_001.png"] = png(imgs["TEST_001.png"], "L")
    elif case == "corrupt":
        entries["TEST_001.png"] = entries["TEST_001.png"][:2000]
    elif case == "jpeg":
        buf = io.BytesIO()
        Image.fromarray(imgs["TEST_001.png"]).save(buf, format="JPEG")
        entries["TEST_001.png"] = buf.getvalue()
    z = make_zip(tmp_path / "bad.zip", entries)
    with pytest.raises(SubmissionError, match=match):
        utils.validate_submission(z, test_csv)


def test_not_a_zip(tmp_path, test_csv):
    p = tmp_path / "x.zip"
    p.write_bytes(b"hello")
    with pytest.raises(SubmissionError, match="x.zip"):
        utils.validate_submission(p, test_csv)


def test_writer_refuses_wrong_arrays_and_keeps_old_zip(tmp_path):
    z = utils.write_submission_zip(good_images(), tmp_path / "sub.zip")
    before = z.read_bytes()
    with pytest.raises(SubmissionError, match="TEST_009.png"):
        utils.write_submission_zip({"TEST_009.png": np.zeros((512, 512), np.uint8)}, z)
    assert z.read_bytes() == before  # atomic: the earlier zip is intact


def test_expected_names_listed_twice_are_refused(tmp_path, test_csv):
    """Bug 3: a test.csv (or an expected list) naming one image twice is refused, naming the csv, the name and its
    lines, instead of being accepted and the name returned twice."""
    z = utils.write_submission_zip(good_images(), tmp_path / "sub.zip")
    dup = tmp_path / "dup.csv"
    pd.DataFrame(
        {
            "input_image_path": [
                "./test_input/TEST_000.png",
                "./test_input/TEST_001.png",
                "./test_input/TEST_002.png",
                "./test_input/TEST_000.png",
            ]
        }
    ).to_csv(dup, index=False)
    with pytest.raises(SubmissionError, match=r"dup.csv: TEST_000.png is listed 2 times, on lines 2, 5"):
        utils.validate_submission(z, dup)
    with pytest.raises(SubmissionError, match=r"dup.csv: TEST_000.png is listed 2 times"):
        utils.validate_submission(z, str(dup))
    with pytest.raises(SubmissionError, match=r"TEST_001.png is listed 2 times, on items 2, 4"):
        utils.validate_submission(z, ["TEST_000.png", "TEST_001.png", "TEST_002.png", "TEST_001.png"])
    assert utils.validate_submission(z, ["TEST_000.png", "TEST_001.png", "TEST_002.png"])
