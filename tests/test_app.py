"""The app end to end in a real browser (Debian's Chromium driven by Playwright), plus its upload checks."""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import utils

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(tiny_weights):
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--weights", str(tiny_weights), "--port", str(port),
                             "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("app exited: " + proc.stdout.read()[-2000:])
            time.sleep(1)
    else:
        proc.kill()
        pytest.fail("app did not start in 120 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: `make test` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_with_uploads(page, url: str, uploads, attempts: int = 3):
    """Open the app and upload each (elem_id, path), waiting until the component shows the file's name. Under load
    an upload can be lost (before Gradio's front end has attached its handler, or half-way, with the file field
    gone and no name shown): then load the page afresh and upload everything again."""
    for attempt in range(attempts):
        page.goto(url)
        page.wait_for_selector("#restore-btn", timeout=60_000)
        try:
            for elem_id, path in uploads:
                page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))
                page.wait_for_function(f"document.querySelector('#{elem_id}').innerText.includes('{path.name}')",
                                       timeout=45_000)
            return
        except Exception:
            if attempt == attempts - 1:
                raise


def test_upload_restore_and_see_result(app_url, browser, sample_data, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    src = tmp_path / "TEST_000.png"
    src.write_bytes((sample_data / "test_input" / "TEST_000.png").read_bytes())
    gt = tmp_path / "gt.png"
    gt.write_bytes((sample_data / "test_gt" / "TEST_000.png").read_bytes())
    open_with_uploads(page, app_url, [("input-file", src), ("gt-file", gt)])
    t = time.time()
    page.click("#restore-btn")
    page.wait_for_selector("#restored-out img", timeout=120_000)
    page.wait_for_function("document.querySelector('#status').innerText.includes('Score')", timeout=60_000)
    seconds = time.time() - t
    size = page.evaluate("(() => { const i = document.querySelector('#restored-out img');"
                         " return [i.naturalWidth, i.naturalHeight]; })()")
    assert size == [512, 512]
    assert page.locator("#mask-out img").count() == 1 and page.locator("#colorized-out img").count() == 1
    assert "(natural colours)" in page.inner_text("#status")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)
    print(f"upload-to-result: {seconds:.1f} s")
    page.locator("#colours").get_by_label("score").check()         # the same image with the score's hue remap
    page.click("#restore-btn")
    page.wait_for_function("document.querySelector('#status').innerText.includes('score colours')", timeout=120_000)
    assert "Score" in page.inner_text("#status")
    page.close()


def test_bad_upload_shows_message_and_app_keeps_running(app_url, browser, tmp_path):
    page = browser.new_page()
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not an image")
    open_with_uploads(page, app_url, [("input-file", bad)])
    page.click("#restore-btn")
    page.wait_for_function("document.querySelector('#status').innerText.includes('not a readable image')", timeout=60_000)
    assert "broken.png" in page.inner_text("#status")
    # the app still answers
    assert urllib.request.urlopen(app_url, timeout=10).status == 200
    page.close()


def test_upload_checks_and_batch(tiny_weights, sample_data, tmp_path):
    import app

    with pytest.raises(app.UploadError, match="not a readable image"):
        app.load_upload(tmp_path.joinpath("x.png").write_bytes(b"nope") and tmp_path / "x.png")
    big = tmp_path / "big.png"
    Image.new("L", (8000, 6000)).save(big)
    with pytest.raises(app.UploadError, match="too large"):
        app.load_upload(big)
    restorer = utils.Restorer.from_dir(tiny_weights, device="cpu")
    z = tmp_path / "in.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(sample_data / "test_input" / "TEST_000.png", "TEST_000.png")
        zf.write(sample_data / "test_input" / "TEST_001.png", "nested/TEST_001.png")
        zf.writestr("broken.png", b"junk")
    out, md = app.restore_zip(restorer, z)
    assert utils.validate_submission(out, ["TEST_000.png", "TEST_001.png"])
    assert "broken.png" in md
    gray, gt, mask = app.damage_photo(utils.builtin_photo_paths()[0], seed=3)
    assert gray.shape == (512, 512) and gt.shape == (512, 512, 3)
    assert np.array_equal(gray[~mask], utils.gray_of(gt)[~mask])
