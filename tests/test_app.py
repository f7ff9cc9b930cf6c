"""The app end to end in a real browser (Debian's Chromium driven by Playwright), plus its upload checks."""
import io
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import utils

pytestmark = [pytest.mark.slow]

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
def app_server(tiny_weights):
    """app.py on a free port: {"url", "port", "output": the lines it has printed so far (read as they come)}."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--weights", str(tiny_weights), "--port", str(port),
                             "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    threading.Thread(target=lambda: output.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                break
        except OSError:
            if proc.poll() is not None:
                time.sleep(0.5)
                pytest.fail("app exited: " + "".join(output)[-2000:])
            time.sleep(1)
    else:
        proc.kill()
        pytest.fail("app did not start in 120 s")
    yield {"url": url, "port": port, "output": output}
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def app_url(app_server):
    return app_server["url"]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: `make test` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_with_uploads(page, url: str, uploads, attempts: int = 3, tab: str | None = None):
    """Open the app (and `tab`) and upload each (elem_id, path), waiting until the component shows the upload as an
    image (a preview, not a file name). Under load an upload can be lost (before Gradio's front end has attached
    its handler, or half-way, with the file field gone and no preview): then load the page afresh and upload
    everything again."""
    for attempt in range(attempts):
        page.goto(url)
        page.wait_for_selector("#restore-btn", timeout=60_000)
        if tab:
            page.get_by_role("tab", name=tab).click()
        try:
            for elem_id, path in uploads:
                page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))
                page.wait_for_selector(f"#{elem_id} img", timeout=45_000)
            return
        except Exception:
            if attempt == attempts - 1:
                raise


def image_size(page, selector: str):
    """[naturalWidth, naturalHeight] of the image shown at `selector` once it has loaded ([0, 0] if it cannot)."""
    page.wait_for_function(f"(document.querySelector('{selector}') || {{}}).complete === true", timeout=30_000)
    return page.evaluate(f"(() => {{ const i = document.querySelector('{selector}'); "
                         "return [i.naturalWidth, i.naturalHeight]; })()")


def file_shown(page, elem_id: str, name: str, timeout: int = 30_000):
    """Wait until the file component `elem_id` shows a file called `name` (Gradio breaks the name over lines)."""
    page.wait_for_function(f"document.querySelector('#{elem_id}').innerText.replace(/\\s/g, '').includes('{name}')",
                           timeout=timeout)


@pytest.mark.browser
def test_upload_restore_and_see_result(app_url, browser, sample_data, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    src = tmp_path / "TEST_000.png"
    src.write_bytes((sample_data / "test_input" / "TEST_000.png").read_bytes())
    gt = tmp_path / "gt.png"
    gt.write_bytes((sample_data / "test_gt" / "TEST_000.png").read_bytes())
    open_with_uploads(page, app_url, [("input-file", src), ("gt-file", gt)])
    # the upload and the ground truth are shown as images (previews), not as file names
    assert image_size(page, "#input-file img") == [512, 512] and image_size(page, "#gt-file img") == [512, 512]
    t = time.time()
    page.click("#restore-btn")
    page.wait_for_selector("#restored-out img", timeout=120_000)
    page.wait_for_function("document.querySelector('#status').innerText.includes('Score')", timeout=60_000)
    seconds = time.time() - t
    size = page.evaluate("(() => { const i = document.querySelector('#restored-out img');"
                         " return [i.naturalWidth, i.naturalHeight]; })()")
    assert size == [512, 512]
    assert page.locator("#mask-out img").count() == 1 and page.locator("#colorized-out img").count() == 1
    # the download is named after the input, not restored-u0ekigsi.png
    file_shown(page, "download", "TEST_000_restored.png")
    assert "(natural colours)" in page.inner_text("#status")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app.png"), full_page=True)
    print(f"upload-to-result: {seconds:.1f} s")
    page.locator("#colours").get_by_label("score").check()         # the same image with the score's hue remap
    page.click("#restore-btn")
    page.wait_for_function("document.querySelector('#status').innerText.includes('score colours')", timeout=120_000)
    assert "Score" in page.inner_text("#status")
    page.close()


@pytest.mark.browser
def test_bad_upload_shows_message_and_app_keeps_running(app_url, browser, tmp_path):
    page = browser.new_page()
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not an image")
    open_with_uploads(page, app_url, [("input-file", bad)])
    page.click("#restore-btn")
    page.wait_for_function("document.querySelector('#status').innerText.includes('not a readable image')",
                           timeout=60_000)
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


def test_the_terminal_says_where_the_app_is_and_suggests_no_public_link(app_server):
    """Gradio's launch lines would suggest `share=True` (a public link through gradio.live) for this offline app."""
    text = "".join(app_server["output"])
    assert f"running on http://127.0.0.1:{app_server['port']}" in text and "Ctrl-C to stop" in text, text
    assert "share=True" not in text and "public" not in text.lower(), text


def open_batch_with(page, url: str, files, attempts: int = 3):
    """Open the app's Batch tab and upload `files`, waiting until the file list shows the first (an upload lost
    under load: load the page afresh, as open_with_uploads does)."""
    for attempt in range(attempts):
        page.goto(url)
        page.wait_for_selector("#restore-btn", timeout=60_000)
        page.get_by_role("tab", name="Batch").click()
        page.locator("#batch-files input[type=file]").set_input_files([str(f) for f in files])
        try:
            file_shown(page, "batch-files", Path(files[-1]).name, timeout=45_000)
            return
        except Exception:
            if attempt == attempts - 1:
                raise


def status_says(page, elem_id: str, text: str, timeout: int = 120_000):
    page.wait_for_function(f"document.querySelector('#{elem_id}').innerText.includes({text!r})", timeout=timeout)


@pytest.mark.browser
def test_batch_and_damage_tabs_follow_the_colour_choice(app_url, browser, sample_data, tmp_path):
    from test_restore_cli import phone_photo

    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    z = tmp_path / "inputs.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(sample_data / "test_input" / "TEST_000.png", "TEST_000.png")
    open_batch_with(page, app_url, [z])
    page.click("#batch-btn")  # the page starts on natural colours
    status_says(page, "status-batch", "(natural colours)")
    file_shown(page, "zip-out", "inputs_restored.zip")
    page.locator("#colours").get_by_label("score").check()
    page.click("#batch-btn")
    status_says(page, "status-batch", "(score colours)")
    # a submission zip is made in score colours whatever the choice, as restore.py --zip does, and says so
    page.locator("#colours").get_by_label("natural").check()
    page.locator("#batch-kind").get_by_label("competition submission zip", exact=False).check()
    page.click("#batch-btn")
    status_says(page, "status-batch", "validated submission zip")
    assert "score colours" in page.inner_text("#status-batch")
    file_shown(page, "zip-out", "inputs_submission.zip")
    page.close()

    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    phone_photo(tmp_path / "phone.jpg", 600, 800)  # stored sideways with EXIF orientation 6
    open_with_uploads(page, app_url, [("photo-file", tmp_path / "phone.jpg")], tab="Damage a colour photo")
    page.locator("#colours").get_by_label("score").check()
    page.click("#damage-btn")
    page.wait_for_function(
        "document.querySelector('#status-damage').innerText.includes('(score colours)')", timeout=120_000
    )
    assert image_size(page, "#truth-damage img") == [512, 512]
    file_shown(page, "download-damage", "phone_seed0_restored.png")
    assert "central 600x600 square (of 800x600)" in page.inner_text("#status-damage")  # says what it crops
    page.close()


def fetch_image(page, selector: str) -> np.ndarray:
    """The image shown at `selector`, fetched from the app as the browser got it (uint8 array)."""
    src = page.get_attribute(selector, "src")
    with urllib.request.urlopen(src, timeout=30) as r:
        return np.asarray(Image.open(io.BytesIO(r.read())))


@pytest.mark.browser
def test_paint_a_stroke_restore_and_the_strokes_pixels_are_filled(app_url, browser, tmp_path):
    """The user paints over a scratch in the damage editor and restores with the painted hole only: the pixels
    under the stroke are filled from their surroundings, the scratch beyond the stroke and everything else keep
    their luminance exactly. (The tiny weights' inpainter is untrained, so the fill is its Telea pre-fill.)"""
    yy, xx = np.mgrid[0:512, 0:512]  # a smooth photo (a fill recovers it closely)
    truth = (120 + 60 * np.sin(xx / 45.0) + 50 * np.cos(yy / 60.0)).astype(np.uint8)
    damaged = truth.copy()
    damaged[253:259, :] = 255  # a white scratch across the middle, 6 px
    src = tmp_path / "scratched.png"
    Image.fromarray(damaged).save(src)
    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    open_with_uploads(page, app_url, [("input-file", src)])
    status_says(page, "mark-status", "Detected hole", timeout=60_000)
    canvas = page.locator("#mark canvas").first
    for _ in range(60):  # until the editor has drawn the image
        shot = np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("L"))
        h, w = shot.shape
        if shot[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].std() > 10:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the damage editor did not show the uploaded image")
    # a horizontal stroke along the middle of the canvas (the image fills the square canvas, centred in the
    # editor): over the scratch from about 1/4 to 3/4 of its width; the brush is 10 px wide
    box = canvas.bounding_box()
    cx, cy, half = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, 0.25 * box["height"]
    page.mouse.move(cx - half, cy)
    page.mouse.down()
    for i in range(1, 5):  # (each move is redrawn: software WebGL is slow)
        page.mouse.move(cx - half + i * 2 * half / 4, cy)
    page.mouse.up()
    page.locator("#hole-from").get_by_label("painted only").check()
    page.click("#restore-btn")
    status_says(page, "status", "painted hole")
    restored = utils.gray_of(fetch_image(page, "#restored-out img")[..., :3]).astype(int)
    hole = restored != damaged
    cols = np.nonzero(hole[253:259].all(0))[0]  # the columns where the stroke covered the scratch
    assert len(cols) > 150 and cols.min() < 200 and cols.max() > 312, (len(cols), cols.min(), cols.max())
    under = (slice(253, 259), slice(200, 313))
    err = np.abs(restored[under] - truth[under]).mean()
    assert err < 10, (
        f"the stroke's pixels are {err:.1f} gray levels off the truth (the scratch: "
        f"{np.abs(255 - truth[under].astype(int)).mean():.0f})"
    )
    assert (restored[253:259, :40] == 255).all() and (restored[253:259, -40:] == 255).all()  # not painted there
    assert np.array_equal(restored[:230], damaged[:230]) and np.array_equal(restored[282:], damaged[282:])
    assert "Restored a 512x512 image" in page.inner_text("#status")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app_paint.png"), full_page=True)
    page.close()


@pytest.mark.browser
def test_batch_tab_with_two_non_square_photos(app_url, browser, tmp_path):
    """Two photos of other sizes and shapes in, each restored at its own size (not squashed to 512x512) into a zip
    named after the first input, with a preview of each."""
    rng = np.random.default_rng(5)
    sizes = {"wide.png": (600, 400), "tall.jpg": (300, 450)}
    for name, (w, h) in sizes.items():
        Image.fromarray(rng.integers(60, 200, (h, w), dtype=np.uint8)).save(tmp_path / name)
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    open_batch_with(page, app_url, [tmp_path / n for n in sizes])
    page.click("#batch-btn")
    status_says(page, "status-batch", "each at its own size")
    file_shown(page, "zip-out", "wide_and_1_more_restored.zip")
    page.wait_for_function("document.querySelectorAll('#batch-previews img').length === 2", timeout=30_000)
    href = page.get_attribute("#zip-out a[href]", "href")
    with urllib.request.urlopen(href, timeout=30) as r, zipfile.ZipFile(io.BytesIO(r.read())) as zf:
        got = {n: Image.open(zf.open(n)).size for n in zf.namelist()}
    assert got == {"wide.png": (600, 400), "tall.png": (300, 450)}
    assert "Restored 2 image(s), each at its own size (natural colours)" in page.inner_text("#status-batch")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app_batch.png"), full_page=True)
    page.close()


def test_uploads_are_read_upright_and_downloads_named_after_them(tiny_weights, tmp_path):
    from test_restore_cli import phone_photo

    import app

    upright = phone_photo(tmp_path / "IMG_0001.jpg")  # a phone photo: pixels sideways, EXIF orientation 6
    rgb = app.load_upload(tmp_path / "IMG_0001.jpg")
    assert rgb.shape == upright.shape and np.abs(rgb.astype(int) - upright).mean() < 4
    # the crop of the damage tab comes from the upright photo: its top rows are the red band
    _, truth, _ = app.damage_photo(tmp_path / "IMG_0001.jpg", seed=0)
    assert truth[:20, :, 0].mean() > 200 and truth[:20, :, 2].mean() < 60
    restorer = utils.Restorer.from_dir(tiny_weights, device="cpu")
    *_, out, _ = app.restore_array(restorer, utils.gray_of(rgb), name="IMG_0001.jpg")
    assert Path(out).name == "IMG_0001_restored.png" and utils.read_image(out, "RGB").shape == rgb.shape
    *_, again, _ = app.restore_array(restorer, utils.gray_of(rgb), name="IMG_0001.jpg")
    assert Path(again).name == Path(out).name and again != out and Path(out).exists()  # a folder each
    assert app.restored_name("../a b/<weird>:name.tif") == "_weird__name_restored.png"
    assert app.restored_name(None) == "restored.png"
    assert app.upload_of({"path": "/tmp/gradio/x/abc.png", "orig_name": "holiday.png"}) == (
        "/tmp/gradio/x/abc.png",
        "holiday.png",
    )


def restored_png(page) -> np.ndarray:
    """The restored PNG the page offers for download, as an RGB array."""
    import io

    href = page.locator("#download a").first.get_attribute("href")
    return np.asarray(Image.open(io.BytesIO(page.request.get(href).body())).convert("RGB"))


def pick_colour(page, hex_colour: str):
    """Set the hint colour picker (its dialog's hex field) and close the dialog."""
    page.click("#hint-colour button.dialog-button")
    field = page.locator("#hint-colour input[type=text]")
    field.fill(hex_colour)
    field.press("Enter")
    page.keyboard.press("Escape")
    page.click("#hints-list")


@pytest.mark.browser
def test_a_hint_placed_by_clicking_colours_the_restoration_there(app_url, browser, sample_data, tmp_path):
    import re

    from test_guidance import delta_e

    from utils.inference.color import compose_rgb, rgb_to_cbcr_np

    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    src = tmp_path / "TEST_001.png"
    src.write_bytes((sample_data / "test_input" / "TEST_001.png").read_bytes())
    open_with_uploads(page, app_url, [("input-file", src)])
    page.wait_for_selector("#hint-image img", timeout=60_000)
    assert image_size(page, "#hint-image img") == [512, 512]
    pick_colour(page, "#2858dc")
    box = page.locator("#hint-image img").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.6)
    page.wait_for_function("document.querySelector('#hints-list').innerText.includes('1. (')", timeout=30_000)
    m = re.search(r"1\. \((\d+), (\d+)\) (#[0-9a-f]{6})", page.inner_text("#hints-list"))
    assert m and m.group(3) == "#2858dc", page.inner_text("#hints-list")
    x, y = int(m.group(1)), int(m.group(2))
    assert abs(x - 0.3 * 512) < 12 and abs(y - 0.6 * 512) < 12          # where the click was, in image pixels
    page.click("#restore-btn")
    page.wait_for_function("document.querySelector('#status').innerText.includes('1 colour hint')", timeout=120_000)
    out = restored_png(page)
    luma = utils.gray_of(out)[y, x]
    want = compose_rgb(np.array([[luma]], np.uint8), rgb_to_cbcr_np(np.array([[[40, 88, 220]]], np.uint8)) + 0.5)
    assert delta_e(out[y:y + 1, x:x + 1], want)[0, 0] <= 3.0                # the hint's colour at its point
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app_hint.png"), full_page=True)
    page.click("#clear-hints")
    page.wait_for_function("document.querySelector('#hints-list').innerText.includes('No colour hints')",
                           timeout=30_000)
    page.close()


@pytest.mark.browser
def test_a_reference_upload_changes_the_colours(app_url, browser, sample_data, tmp_path):
    from utils.inference.hue import BINS, angle_histogram

    page = browser.new_page(viewport={"width": 1400, "height": 1300})
    src = tmp_path / "TEST_002.png"
    src.write_bytes((sample_data / "test_input" / "TEST_002.png").read_bytes())
    green = np.zeros((120, 160, 3), np.uint8)
    green[..., 1], green[..., 0] = 190, 60
    Image.fromarray(green).save(tmp_path / "green.png")
    open_with_uploads(page, app_url, [("input-file", src)])
    page.click("#restore-btn")
    page.wait_for_function("document.querySelector('#status').innerText.includes('natural colours')", timeout=120_000)
    plain = restored_png(page)
    before = page.locator("#download a").first.get_attribute("href")
    page.locator("#reference-file input[type=file]").set_input_files(str(tmp_path / "green.png"))
    page.wait_for_selector("#reference-file img", timeout=45_000)
    page.click("#restore-btn")
    page.wait_for_function("document.querySelector('#status').innerText.includes('reference photo')", timeout=120_000)
    page.wait_for_function(f"document.querySelector('#download a').getAttribute('href') !== {before!r}",
                           timeout=30_000)
    guided = restored_png(page)
    target = np.argmax(angle_histogram(green))
    near = np.abs((np.arange(BINS) - target + BINS // 2) % BINS - BINS // 2) <= 20
    assert angle_histogram(guided)[near].sum() > 0.9 > angle_histogram(plain)[near].sum()
    assert np.array_equal(utils.gray_of(guided), utils.gray_of(plain))     # other colours, the same luminance
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "app_reference.png"), full_page=True)
    page.close()
