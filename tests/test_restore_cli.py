import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import utils

ROOT = Path(__file__).resolve().parent.parent


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
    proc = subprocess.run([sys.executable, str(ROOT / "restore.py"), str(tmp_path / "in"), str(tmp_path / "out"),
                           "--weights", str(tmp_path / "nothing")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no complete set" in proc.stderr and "Traceback" not in proc.stderr


def test_restore_with_only_unreadable_inputs_writes_no_zip_and_lists_them(tiny_weights, tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    for name in ("a.png", "b.png"):
        (inp / name).write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    z = tmp_path / "sub.zip"
    proc = subprocess.run([sys.executable, str(ROOT / "restore.py"), str(inp), str(tmp_path / "out"), "--weights",
                           str(tiny_weights), "--device", "cpu", "--zip", str(z)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "restored 0 of 2 images" in proc.stdout
    assert "2 failed" in proc.stderr and "a.png" in proc.stderr and "b.png" in proc.stderr
    assert "not written: no image could be restored" in proc.stderr and not z.exists()
