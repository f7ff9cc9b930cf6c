"""The app's screenshots in docs/app.md: the damage painted over a scratched photo and restored, and the Batch tab
with two photos of other shapes, taken in Chromium (Playwright) from the app running on a weights folder.

The photos are the held-out bundled ones (utils.sample_data.BUILTIN_TEST), turned gray. The one in the Restore tab
is scratched here (white and black strokes, thin and thick, unlike the competition's polygon damage) and gets one
polygon hole of one gray value, as the competition's; the strokes are painted over in the app's damage editor along
the same lines, the polygon is left to the mask network, and the photo is restored with "painted and detected". The
two of the Batch tab get the competition's polygon damage (stretched to their shapes). The PNGs have 256 colours.

    python research/app_screenshots.py --weights weights --out docs/images

Needs Debian's Chromium (`make browser`). Writes app_paint.png and app_batch.png into --out (atomically).
"""
from __future__ import annotations

import argparse
import io
import runpy
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

import utils

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
# (x0, y0, x1, y1, thickness, gray value): the scratches drawn on the painting photo, in its own pixels
SCRATCHES = [(40, 70, 330, 150, 3, 255), (360, 40, 600, 300, 7, 255), (90, 330, 520, 280, 2, 20),
             (200, 200, 240, 400, 5, 30)]
# and a hole as the competition makes them (one polygon of one gray value), which the mask network finds
POLYGON, POLYGON_FILL = [(470, 330), (560, 305), (600, 360), (545, 352), (520, 405), (480, 370)], 150


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def photo(name: str) -> np.ndarray:
    path = next(p for p in utils.builtin_photo_paths() if p.name == name)
    return utils.gray_of(utils.read_image(path, "RGB"))


def scratched(gray: np.ndarray, scratches) -> np.ndarray:
    out = gray.copy()
    for x0, y0, x1, y1, t, v in scratches:
        cv2.line(out, (x0, y0), (x1, y1), int(v), t, lineType=cv2.LINE_AA)
    return out


def start_app(weights: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--weights", str(weights), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(240):
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return proc, url
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("app.py exited: " + proc.stdout.read()[-2000:]) from None
            time.sleep(1)
    proc.kill()
    raise SystemExit("app.py did not start in 4 minutes")


def wait_text(page, elem_id: str, text: str, timeout: int = 300_000) -> None:
    page.wait_for_function(f"document.querySelector('#{elem_id}').innerText.includes({text!r})", timeout=timeout)


def save(page, path: Path, top: str, bottom: str) -> None:
    """A screenshot of the page from the top of element `top` to the bottom of element `bottom`."""
    a, b = page.locator(top).bounding_box(), page.locator(bottom).bounding_box()
    scrolled = page.evaluate("window.scrollY")      # boxes are in the viewport's coordinates, the clip in the page's
    y0, y1 = a["y"] + scrolled - 12, b["y"] + b["height"] + scrolled + 12
    png = page.screenshot(full_page=True, clip={"x": 0, "y": y0, "width": page.viewport_size["width"],
                                                "height": y1 - y0})
    shot = Image.open(io.BytesIO(png)).convert("RGB")       # 256 colours, dithered: a third of the bytes
    with utils.atomic_path(path) as tmp:
        shot.quantize(256, Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(tmp, format="PNG",
                                                                                            optimize=True)
    print(f"wrote {path}")


def paint(page, gray_shape, scratches) -> None:
    """Paint over each scratch in the damage editor: image pixels -> screen points through the editor's zoom
    (shown in its toolbar) around the canvas's centre (the image is fitted into the square canvas, centred)."""
    app = runpy.run_path(str(ROOT / "app.py"), run_name="app")       # the editor's geometry, as the app computes it
    size, mark_box = app["MARK_SIZE"], app["mark_box"]

    canvas = page.locator("#mark canvas").first
    canvas.scroll_into_view_if_needed()     # the mouse reaches only what the viewport shows
    box = canvas.bounding_box()
    zoom = float(page.locator("#mark").get_by_text("%").first.inner_text().strip().rstrip("%")) / 100
    x0, y0, fw, fh = mark_box(*gray_shape)
    s = fw / gray_shape[1]
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    def screen(x, y):
        return cx + (x0 + x * s - size / 2) * zoom, cy + (y0 + y * s - size / 2) * zoom

    for x_a, y_a, x_b, y_b, *_ in scratches:
        page.mouse.move(*screen(x_a, y_a))
        page.mouse.down()
        for t in np.linspace(0, 1, 6)[1:]:
            page.mouse.move(*screen(x_a + t * (x_b - x_a), y_a + t * (y_b - y_a)))
        page.mouse.up()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, default=ROOT / "weights")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="app-screenshots-"))
    gray = photo("china.jpg")
    damaged = scratched(gray, SCRATCHES)
    cv2.fillPoly(damaged, [np.array(POLYGON, np.int32)], POLYGON_FILL)
    Image.fromarray(damaged).save(work / "pagoda.png")
    for seed, (name, src) in enumerate((("rocket.png", "rocket.jpg"), ("hopper.png", "grace_hopper.jpg"))):
        g = photo(src).copy()              # the competition's polygon damage, stretched to the photo's shape
        dmg = utils.sample_damage(np.random.default_rng(seed))
        hole = cv2.resize(dmg.mask.astype(np.uint8), g.shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
        g[hole] = dmg.fill
        Image.fromarray(g).save(work / name)
    proc, url = start_app(args.weights)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1500})
            page.goto(url)
            page.wait_for_selector("#restore-btn", timeout=120_000)
            page.locator("#input-file input[type=file]").set_input_files(str(work / "pagoda.png"))
            wait_text(page, "mark-status", "Detected hole")
            time.sleep(3)                              # the editor draws the image and the detected hole
            paint(page, gray.shape, SCRATCHES)
            page.click("#restore-btn")
            wait_text(page, "status", "Restored")
            time.sleep(2)
            save(page, args.out / "app_paint.png", "#mark", "#restored-out")

            page.get_by_role("tab", name="Batch").click()
            page.locator("#batch-files input[type=file]").set_input_files([str(work / "rocket.png"),
                                                                           str(work / "hopper.png")])
            page.wait_for_function("document.querySelector('#batch-files').innerText.includes('hopper')")
            page.click("#batch-btn")
            wait_text(page, "status-batch", "Restored")
            page.wait_for_function("document.querySelectorAll('#batch-previews img').length === 2")
            time.sleep(2)
            save(page, args.out / "app_batch.png", "#batch-files", "#batch-previews")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
