"""Bad input and faults: nothing overwritten, nothing exhausted, every error names the file.
Each test checks one way a user's input or environment can go wrong."""
import hashlib
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

import utils
from utils.core.guards import OutputError, plan_outputs

ROOT = Path(__file__).resolve().parent.parent


def run_restore(*args):
    return run_cli("restore.py", *args)


def digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def huge_png_header(path: Path, width: int = 20000, height: int = 20000):
    """A PNG whose header says width x height (the pixel data is a few bytes): what a decompression bomb
    looks like to a reader that decodes before it checks."""
    Image.new("L", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = 8 + 8                                   # signature, then length + b"IHDR"
    data[ihdr:ihdr + 8] = struct.pack(">II", width, height)
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4:ihdr + 13])) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))


@pytest.fixture
def inputs(sample_data, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    for i in range(2):
        shutil.copy(sample_data / "test_input" / f"TEST_00{i}.png", inp / f"TEST_00{i}.png")
    return inp


# 1. silent overwrites -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_restore_into_its_input_folder_is_refused(inputs, tiny_weights):
    before = digest(inputs)
    proc = run_restore(inputs, inputs, "--weights", tiny_weights, "--device", "cpu")
    assert proc.returncode == 2 and "overwrite an input" in proc.stderr and "Traceback" not in proc.stderr
    assert digest(inputs) == before                          # inputs never modified


@pytest.mark.slow
def test_masks_folder_equal_to_output_folder_is_refused(inputs, tiny_weights, tmp_path):
    out = tmp_path / "out"
    proc = run_restore(inputs, out, "--masks", out, "--weights", tiny_weights, "--device", "cpu")
    assert proc.returncode == 2 and "masks folder is the output folder" in proc.stderr
    assert not out.exists() or not any(out.iterdir())          # checked before any work: nothing written


@pytest.mark.slow
def test_two_inputs_with_one_output_name_are_refused(inputs, tiny_weights, tmp_path):
    Image.open(inputs / "TEST_000.png").save(inputs / "TEST_000.jpg")
    proc = run_restore(inputs, tmp_path / "out", "--weights", tiny_weights, "--device", "cpu")
    assert proc.returncode == 2 and "TEST_000.jpg and TEST_000.png" in proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_plan_outputs_checks():
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        a = d / "a.png"
        a.write_bytes(b"x")
        assert plan_outputs([a], d / "out") == {a: d / "out" / "a.png"}
        with pytest.raises(OutputError, match="overwrite an input"):
            plan_outputs([a], d)
        with pytest.raises(OutputError, match="overwrite an input"):   # the zip onto an input
            plan_outputs([a], d / "out", zip_path=d / "a.png")


@pytest.mark.slow
def test_app_batch_with_two_members_of_one_name_reports_the_second(tiny_weights, sample_data, tmp_path):
    import app

    restorer = utils.Restorer.from_dir(tiny_weights, device="cpu")
    z = tmp_path / "in.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(sample_data / "test_input" / "TEST_000.png", "a/x.png")
        zf.write(sample_data / "test_input" / "TEST_001.png", "b/x.png")
    out, md = app.restore_zip(restorer, z)
    assert utils.validate_submission(out, ["x.png"])
    assert "b/x.png: same output name x.png as a/x.png" in md


# 2. app batch zip bomb, temp files; the app under concurrent load ------------------------------------------------
def zip_with_member(path: Path, name: str, size: int):
    """A small zip holding a member of `size` zero bytes (deflate: ~1000x smaller)."""
    chunk = b"\0" * (1 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf, zf.open(name, "w", force_zip64=True) as f:
        for _ in range(size >> 20):
            f.write(chunk)


def app_temp_entries() -> set:
    return {p.name for p in Path(tempfile.gettempdir()).iterdir()
            if p.name.startswith(("batch-", "restored-", "samples-"))}


@pytest.mark.slow
def test_app_under_concurrent_restores_and_a_zip_bomb(tiny_weights, sample_data, tmp_path):
    """Four restores in threads while a batch zip holding a 256 MB member (1 MB on disk) and a zip of more
    images than allowed are refused: the process grows by less than 300 MB (the bomb alone would add
    256 MB read whole), no per-request temp folder remains, and the app's output folder keeps its last 16 files."""
    import app

    restorer = utils.Restorer.from_dir(tiny_weights, device="cpu")
    bomb = tmp_path / "bomb.zip"
    zip_with_member(bomb, "TEST_000.png", 256 << 20)
    assert bomb.stat().st_size < 2 << 20
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as zf:
        for i in range(app.MAX_ZIP_MEMBERS + 1):
            zf.writestr(f"{i}.png", b"")
    gray = utils.read_image(sample_data / "test_input" / "TEST_000.png", "L")
    before_tmp = app_temp_entries()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    errors, results = [], []

    def restore_one():
        try:
            results.append(app.restore_array(restorer, gray))
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=restore_one) for _ in range(4)]
    for t in threads:
        t.start()
    with pytest.raises(app.UploadError, match="TEST_000.png is 256.0 MiB uncompressed"):
        app.restore_zip(restorer, bomb)
    with pytest.raises(app.UploadError, match=f"limit is {app.MAX_ZIP_MEMBERS}"):
        app.restore_zip(restorer, many)
    for t in threads:
        t.join()
    assert not errors and len(results) == 4
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    assert grown_mb < 300, f"grew by {grown_mb:.0f} MB"
    assert app_temp_entries() == before_tmp
    for _ in range(20):
        app.restore_array(restorer, gray)
    assert len(list(app.OUTPUTS.dir.iterdir())) <= app.OUTPUTS.keep


# 3. one huge image among good ones --------------------------------------------------------------------------------
@pytest.mark.slow
def test_huge_image_is_skipped_by_name_and_the_others_restored(inputs, tiny_weights, tmp_path):
    huge_png_header(inputs / "huge.png")
    huge_png_header(inputs / "big.png", 12000, 10000)     # 120 MP: over our limit, under PIL's error (179 MP)
    with pytest.raises(utils.DataError, match="huge.png: image too large"):
        utils.read_image(inputs / "huge.png", "L")
    out = tmp_path / "out"
    proc = run_restore(inputs, out, "--weights", tiny_weights, "--device", "cpu")
    assert proc.returncode == 1 and "huge.png" in proc.stderr and "Traceback" not in proc.stderr
    assert "big.png: image too large, 12000x10000 pixels (120 MP)" in proc.stderr
    assert "DecompressionBombWarning" not in proc.stderr        # our message only, not PIL's warning beside it
    assert sorted(p.name for p in out.iterdir()) == ["TEST_000.png", "TEST_001.png"]


def test_pil_decompression_bomb_warning_is_not_shown_beside_our_own_check(tmp_path):
    """From 89 MP PIL warned (DecompressionBombWarning) next to our own message on the image's size."""
    for w, h, problem in ((10000, 9500, "unreadable or truncated"), (12000, 10000, "image too large")):
        huge_png_header(tmp_path / "big.png", w, h)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(utils.DataError, match=f"big.png: {problem}"):
                utils.read_image(tmp_path / "big.png", "L")
        assert [w.category.__name__ for w in caught] == []


# 4. 16-bit PNGs ---------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_16_bit_png_is_scaled_not_clipped(tiny_weights, tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (64, 1))
    path = tmp_path / "in" / "deep.png"
    path.parent.mkdir()
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    gray = utils.read_image(path, "L")
    assert gray.dtype == np.uint8 and np.abs(gray[0].astype(int) - np.arange(256)).max() <= 1
    rgb = utils.read_image(path, "RGB", convert=True)
    assert rgb.mean() > 100                                  # PIL's own conversion gave all white or black
    proc = run_restore(path.parent, tmp_path / "out", "--weights", tiny_weights, "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    out = utils.read_image(tmp_path / "out" / "deep.png", "RGB")
    assert abs(float(utils.gray_of(out).mean()) - float(gray.mean())) < 8


# 5. resume with other settings ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_resume_with_other_settings_is_refused(sample_data, tmp_path):
    table = utils.load_train_table(sample_data)
    ds = utils.SyntheticDamageDataset(list(table.gt_image_path)[:4], size=64)
    stage = utils.MaskStage(loss="bce", lr=1e-3, image_size=64, pretrained="none")
    utils.fit(stage, ds, epochs=1, ckpt_dir=tmp_path, batch_size=2, steps_per_epoch=1, progress=False)
    again = utils.MaskStage(loss="bce", lr=1e-3, image_size=64, pretrained="none")
    assert len(utils.fit(again, ds, epochs=1, ckpt_dir=tmp_path, batch_size=2, steps_per_epoch=1, progress=False)) == 1
    other = utils.MaskStage(loss="dice", lr=1e-2, image_size=64, pretrained="none")
    with pytest.raises(utils.loop.SettingsChangedError, match=r"mask\.train_state\.pt.*loss.*lr"):
        utils.fit(other, ds, epochs=2, ckpt_dir=tmp_path, batch_size=2, steps_per_epoch=1, progress=False)
    with warnings.catch_warnings(record=True) as caught:       # 10: a too-large steps_per_epoch is said, not hidden
        warnings.simplefilter("always")
        utils.fit(utils.MaskStage(loss="bce", lr=1e-3, image_size=64, pretrained="none"), ds, epochs=1,
                  ckpt_dir=tmp_path / "new", batch_size=2, steps_per_epoch=50, progress=False)
    assert any("steps_per_epoch=50 is more than the 2 batches" in str(w.message) for w in caught)


# 6. no network at run time ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_no_network_on_import():
    code = ("import socket\n"
            "calls = []\n"
            "def refuse(self, address, *a):\n"
            "    calls.append(address); raise OSError('network disabled by the test')\n"
            "socket.socket.connect = refuse\n"
            "socket.socket.connect_ex = refuse\n"
            "import utils, restore, app\n"
            "import albumentations\n"
            "print('CONNECTS', calls)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={k: v for k, v in __import__("os").environ.items() if k != "NO_ALBUMENTATIONS_UPDATE"})
    assert "CONNECTS []" in proc.stdout, proc.stdout + proc.stderr


# 7. bad output paths -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_bad_output_paths_fail_before_any_work(inputs, tiny_weights, tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    proc = run_restore(inputs, a_file, "--weights", tiny_weights, "--device", "cpu")
    assert proc.returncode == 2 and "file.txt: the output folder is an existing file" in proc.stderr
    proc = run_restore(inputs, tmp_path / "out", "--zip", tmp_path, "--weights", tiny_weights, "--device", "cpu")
    assert proc.returncode == 2 and "--zip is a folder" in proc.stderr
    proc = run_restore(inputs, "/proc/image-restore-test/out", "--weights", tiny_weights, "--device", "cpu")
    assert proc.returncode == 2 and "cannot be written" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()          # nothing created for a run that was refused


@pytest.mark.slow
def test_a_folder_named_like_an_output_file_is_refused_before_any_work(inputs, tiny_weights, tmp_path):
    """out/TEST_000.png/ (a folder) is refused with exit code 2 before any image is restored."""
    out, masks = tmp_path / "out", tmp_path / "masks"
    (out / "TEST_000.png").mkdir(parents=True)
    proc = run_restore(inputs, out, "--masks", masks, "--zip", tmp_path / "sub.zip", "--weights", tiny_weights,
                       "--device", "cpu")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{out / 'TEST_000.png'}: a folder is where this output file would be written" in proc.stderr
    assert [p.name for p in out.iterdir()] == ["TEST_000.png"] and not any((out / "TEST_000.png").iterdir())
    assert not masks.exists() and not (tmp_path / "sub.zip").exists()     # nothing written, no folder created
    shutil.rmtree(out)
    (masks / "TEST_001.png").mkdir(parents=True)     # the same for a mask
    proc = run_restore(inputs, out, "--masks", masks, "--weights", tiny_weights, "--device", "cpu")
    assert proc.returncode == 2 and f"{masks / 'TEST_001.png'}: a folder is where" in proc.stderr
    assert not out.exists()


# 9. validate_submission with a huge member ------------------------------------------------------------------------
def test_validate_submission_caps_member_size(tmp_path):
    z = tmp_path / "sub.zip"
    zip_with_member(z, "TEST_000.png", 64 << 20)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(utils.SubmissionError, match="TEST_000.png is 64.0 MiB uncompressed"):
        utils.validate_submission(z, ["TEST_000.png"])
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024 < 32


# 10. train.csv ----------------------------------------------------------------------------------------------------
def test_train_csv_problems_name_the_file(sample_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(sample_data, data)
    csv = data / "train.csv"
    good = csv.read_text()
    csv.write_text("")
    with pytest.raises(utils.DataError, match="train.csv: empty file"):
        utils.load_train_table(data)
    csv.write_text(good.splitlines()[0] + "\n")
    with pytest.raises(utils.DataError, match="train.csv: has a header but no rows"):
        utils.load_train_table(data)
    csv.write_bytes(good.encode("utf-16"))                    # a spreadsheet's "Unicode text"
    assert len(utils.load_train_table(data)) == len(good.splitlines()) - 1
    lines = good.splitlines()
    csv.write_text("\n".join([" input_image_path , gt_image_path"] +
                             [" " + ln.replace(",", " , ") + " " for ln in lines[1:]]) + "\n")
    assert len(utils.load_train_table(data)) == len(lines) - 1
    csv.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(utils.DataError, match="train.csv"):
        utils.load_train_table(data)
