import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

import utils

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_restore_folder_with_corrupt_and_odd_files(sample_data, tiny_weights, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    for i in range(2):
        (inp / f"TEST_00{i}.png").write_bytes((sample_data / "test_input" / f"TEST_00{i}.png").read_bytes())
    (inp / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(inp / "photo.jpg")
    out, masks, z = tmp_path / "out", tmp_path / "masks", tmp_path / "sub.zip"
    proc = subprocess.run([sys.executable, str(ROOT / "restore.py"), str(inp), str(out), "--weights", str(tiny_weights),
                           "--device", "cpu", "--batch-size", "2", "--zip", str(z), "--masks", str(masks)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr            # one bad file: non-zero exit, the rest restored
    assert "broken.png" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["TEST_000.png", "TEST_001.png", "photo.png"]
    assert utils.read_image(out / "photo.png", "RGB").shape == (240, 320, 3)   # resized back
    assert utils.read_image(out / "TEST_000.png", "RGB", 512).shape == (512, 512, 3)
    m = utils.read_image(masks / "TEST_000.png", "L")
    assert set(np.unique(m)) <= {0, 255}
    assert utils.validate_submission(z, ["TEST_000.png", "TEST_001.png", "photo.png"])


def test_restore_missing_weights_is_a_clear_error(tmp_path):
    (tmp_path / "in").mkdir()
    Image.new("L", (64, 64)).save(tmp_path / "in" / "a.png")
    proc = run_cli("restore.py", str(tmp_path / "in"), str(tmp_path / "out"),
                           "--weights", str(tmp_path / "nothing"))
    assert proc.returncode == 2 and "no complete set" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_restore_with_only_unreadable_inputs_writes_no_zip_and_lists_them(tiny_weights, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    for name in ("a.png", "b.png"):
        (inp / name).write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    z = tmp_path / "sub.zip"
    proc = run_cli("restore.py", str(inp), str(tmp_path / "out"), "--weights",
                           str(tiny_weights), "--device", "cpu", "--zip", str(z))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "restored 0 of 2 images" in proc.stdout
    assert "2 failed" in proc.stderr and "a.png" in proc.stderr and "b.png" in proc.stderr
    assert "not written: no image could be restored" in proc.stderr and not z.exists()


def test_restore_numeric_options_out_of_range_are_argparse_errors(tmp_path):
    """--threads -1 / 0, --batch-size 0 / -2 / two: an argparse error (exit 2), no traceback, nothing written."""
    (tmp_path / "in").mkdir()
    for option, value in (("--threads", "-1"), ("--threads", "0"), ("--batch-size", "0"), ("--batch-size", "-2"),
                          ("--batch-size", "two")):
        proc = run_cli("restore.py", str(tmp_path / "in"), str(tmp_path / "out"),
                               option, value)
        assert proc.returncode == 2, (option, value, proc.stderr)
        assert f"argument {option}: expected an integer of 1 or more" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_restore_given_an_image_file_says_it_is_a_file_not_a_folder(sample_data, tmp_path):
    image = sample_data / "test_input" / "TEST_000.png"
    proc = run_cli("restore.py", str(image), str(tmp_path / "out"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{image}: is a file, not a folder" in proc.stderr and "not found" not in proc.stderr
    assert f"give the folder (e.g. {image.parent})" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_restore_leaves_no_temporary_file_and_says_how_far_it_got(sample_data, tiny_weights, tmp_path,
                                                                                 signum):
    """SIGTERM and Ctrl-C stop restore.py cleanly: no temporary file (e.g. the zip's .sub.zip.XXXX.tmp) is left,
    no traceback, one line that says how far it got, exit code 128 + the signal."""
    inp, out, zdir = tmp_path / "in", tmp_path / "out", tmp_path / "zip"
    inp.mkdir()
    zdir.mkdir()
    for i in range(60):
        shutil.copy(sample_data / "test_input" / f"TEST_00{i % 4}.png", inp / f"IMG_{i:02d}.png")
    # a shell's background job starts with SIGINT ignored: give the child Python's usual Ctrl-C handling
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "restore.py"),
            str(inp),
            str(out),
            "--weights",
            str(tiny_weights),
            "--device",
            "cpu",
            "--batch-size",
            "1",
            "--zip",
            str(zdir / "sub.zip"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 240
        while not (out.is_dir() and any(p.suffix == ".png" for p in out.iterdir())):  # restoring, zip open
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        assert [p.name.startswith(".sub.zip.") for p in zdir.iterdir()] == [True]  # its temporary file
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, stderr[-2000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    written = sorted(p.name for p in out.iterdir())
    said = re.search(r"interrupted: (\d+) of 60 restored; nothing half-written left; (\S+) not written", stderr)
    assert said and said[2] == str(zdir / "sub.zip"), stderr[-2000:]
    # (a signal between a PNG's rename and its count in the report leaves one more file than counted)
    assert int(said[1]) in (len(written), len(written) - 1)
    assert 1 <= len(written) < 60 and all(n.startswith("IMG_") and n.endswith(".png") for n in written)
    assert list(zdir.iterdir()) == []  # no zip, no temporary file
    assert len(list(inp.iterdir())) == 60


def test_restore_natural_colour_keeps_the_nets_hues_and_the_input_luma(sample_data, tmp_path):
    """--colour natural with the shipped weights: other colours than the default (no hue remap), the same luma
    outside the hole; an unknown choice is an argparse error."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(sample_data / "test_input" / "TEST_000.png", inputs)
    runs = {}
    for colour in ("score", "natural"):
        proc = run_cli(
            "restore.py",
            str(inputs),
            str(tmp_path / colour),
            "--masks",
            str(tmp_path / f"{colour}_masks"),
            "--device",
            "cpu",
            "--colour",
            colour,
        )
        assert proc.returncode == 0, proc.stderr
        runs[colour] = utils.read_image(tmp_path / colour / "TEST_000.png", "RGB")
    gray = utils.read_image(inputs / "TEST_000.png", "L")
    hole = utils.read_image(tmp_path / "natural_masks" / "TEST_000.png", "L") > 0
    assert np.array_equal(utils.gray_of(runs["natural"])[~hole], gray[~hole])
    assert np.abs(runs["natural"].astype(int) - runs["score"]).mean() > 1.0
    proc = run_cli("restore.py", str(inputs), str(tmp_path / "x"), "--colour", "vivid")
    assert proc.returncode == 2 and "--colour" in proc.stderr and "Traceback" not in proc.stderr


def phone_photo(path, height: int = 96, width: int = 160) -> np.ndarray:
    """A photo as a phone stores it: the pixels sideways (rotated 90 degrees counter-clockwise) with EXIF orientation 6
    ("rotate 90 clockwise to view"). Returns the upright image a viewer shows: a red band on top, blue at the left."""
    upright = np.full((height, width, 3), 128, np.uint8)
    upright[: height // 4, :, :] = (255, 0, 0)
    upright[:, : width // 8, :] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1))).save(path, quality=95, exif=exif.tobytes())
    return upright


def test_a_phone_photo_is_read_upright(tmp_path):
    """EXIF orientation applied where images are decoded (utils.guards.decode_image): restore.py, the app, the
    sample-data builder all see the photo as a viewer shows it, not sideways."""
    upright = phone_photo(tmp_path / "phone.jpg")
    with Image.open(tmp_path / "phone.jpg") as raw:
        assert raw.size == (96, 160)  # stored sideways
    rgb = utils.read_image(tmp_path / "phone.jpg", "RGB")
    assert rgb.shape == upright.shape
    assert np.abs(rgb.astype(int) - upright).mean() < 4  # JPEG noise only: same orientation


@pytest.mark.slow
def test_restore_cli_writes_a_phone_photo_upright(tiny_weights, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    phone_photo(inp / "phone.jpg")
    proc = run_cli("restore.py", str(inp), str(tmp_path / "out"), "--weights", str(tiny_weights), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert utils.read_image(tmp_path / "out" / "phone.png", "RGB").shape == (96, 160, 3)  # upright, as viewed
