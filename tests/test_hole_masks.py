"""Damage marked by the user: `Restorer.restore(image, hole_mask=...)`, `restore.py --hole-masks DIR`, and the app's
damage editor and batch tab below the browser (tests/test_app.py drives them in Chromium)."""
import re
import zipfile

import cv2
import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

import utils
from utils.inference.hole_masks import fit_mask, hole_mask_paths, read_hole_mask


@pytest.fixture(scope="module")
def restorer(tiny_weights):
    # the tiny weights are untrained: the inpainter's residual starts at zero, so it fills the hole with its Telea
    # pre-fill, a fill from the hole's surroundings whose error can be measured against the truth
    return utils.Restorer.from_dir(tiny_weights, device="cpu")


def smooth_photo(h: int, w: int) -> np.ndarray:
    """A smooth gray image (a fill from the surroundings recovers it closely)."""
    yy, xx = np.mgrid[0:h, 0:w]
    return (110 + 60 * np.sin(xx / 53.0) + 40 * np.cos(yy / 41.0)).astype(np.uint8)


def scratches(h: int, w: int) -> np.ndarray:
    """Damage of several shapes: a 1 px diagonal scratch, a thick stroke, a spot (three components)."""
    m = np.zeros((h, w), np.uint8)
    cv2.line(m, (10, h // 8), (w - 10, h // 4), 1, 1)
    cv2.line(m, (w // 6, h - 20), (w * 5 // 6, h * 2 // 3), 1, 9)
    cv2.circle(m, (w // 8, h // 2), 6, 1, -1)
    return m > 0


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(512, 512), (400, 600), (300, 220)])
def test_a_given_hole_of_any_shape_is_filled_and_kept_at_the_images_size(restorer, shape):
    truth = smooth_photo(*shape)
    hole = scratches(*shape)
    assert cv2.connectedComponents(hole.astype(np.uint8))[0] - 1 >= 3
    damaged = truth.copy()
    damaged[hole] = 255
    r = next(restorer.restore_images([(damaged, hole)]))
    assert r.restored.shape == (*shape, 3) and np.array_equal(r.mask, hole)     # the mask followed the resize
    filled = utils.gray_of(r.restored).astype(int)
    err = np.abs(filled[hole] - truth[hole]).mean()
    assert err < 12, f"hole filled {err:.1f} gray levels off the truth (the damage was {255 - truth[hole].mean():.0f})"
    # every damaged pixel, the 1 px scratch's included, is filled: none is left near the damage's white
    assert (filled[hole] > 235).mean() < 0.01
    # at any size the luminance outside the hole is the input's exactly (not its round trip through 512x512)
    assert np.array_equal(filled[~hole], truth[~hole])
    assert np.array_equal(restorer.restore(damaged, hole_mask=hole), r.restored)


def test_the_colour_net_never_sees_the_damage(restorer):
    # shown white scratches and their mask, the colour net painted ghosts of them into the colours around them: it
    # now colours the image with the hole pre-filled, as it would the undamaged photo with that fill
    truth = smooth_photo(512, 512)
    hole = scratches(512, 512)
    damaged = truth.copy()
    damaged[hole] = 255
    r = restorer.restore_batch([damaged], [hole])[0]
    filled = utils.prefill(damaged, hole, restorer.prefill)
    assert not np.array_equal(filled, damaged)
    clean = restorer.restore_batch([filled], [np.zeros_like(hole)])[0]
    assert np.array_equal(r.colorized, clean.colorized)


@pytest.mark.slow
def test_a_given_hole_replaces_the_detected_one_or_adds_to_it(restorer, tiny_weights, sample_data):
    gray = utils.read_image(sample_data / "test_input" / "TEST_000.png", "L")
    detected = restorer.detect_hole(gray)
    assert detected.shape == gray.shape and detected.dtype == bool
    assert np.array_equal(next(restorer.restore_images([gray])).mask, detected)
    spot = np.zeros_like(gray)
    spot[40:60, 300:330] = 7                                   # non-zero = damaged, any value
    only = next(restorer.restore_images([(gray, spot)]))
    assert np.array_equal(only.mask, spot > 0)
    both = next(restorer.restore_images([(gray, spot)], add_detected=True))
    assert np.array_equal(both.mask, detected | (spot > 0))
    # the colour post-process with the hole's chroma carried in from its ring, and the hue remap, on a mask
    # of several thin parts: the luminance outside the hole is kept exactly
    ring = utils.Restorer.from_dir(tiny_weights, device="cpu", hole_colour="ring", colour="score")
    hole = scratches(512, 512)
    out = ring.restore(gray, hole_mask=hole)
    assert np.array_equal(utils.gray_of(out)[~hole], gray[~hole])
    # an image whose mask is detected and one with a given mask, in one batch: each as alone
    mixed = list(restorer.restore_images([gray, (gray, spot)], batch_size=2))
    assert np.array_equal(mixed[0].restored, restorer.restore(gray))
    assert np.array_equal(mixed[1].restored, only.restored)


def test_the_detected_hole_of_a_resized_image_is_grown_over_the_resizes_blend(restorer, sample_data):
    """An image of another size is resized to 512x512, which blends its hole's edge into the surroundings: the
    refinement (one exact fill value) leaves that ring out, so the detected hole is grown by
    RESIZED_HOLE_GROWTH px there (not at 512x512, where the fill is exact)."""
    import copy
    from dataclasses import replace

    from utils.inference.pipeline import RESIZED_HOLE_GROWTH, to_competition_gray

    # the tiny weights' untrained mask net is unsure everywhere: the minimum-hole rule (RefineConfig.min_confident_area
    # and the rest) would drop every hole it finds; off here, where the hole's growth is what is tested
    restorer = copy.copy(restorer)
    restorer.refine = replace(restorer.refine, min_confident_area=0, min_hole_prob=0.0, min_hole_value_share=0.0)
    gray = utils.read_image(sample_data / "test_input" / "TEST_000.png", "L")
    wide = cv2.resize(gray, (600, 400), interpolation=cv2.INTER_NEAREST)
    small = to_competition_gray(wide)
    plain = restorer.restore_batch([small])[0].mask
    assert plain.any()
    k = 2 * RESIZED_HOLE_GROWTH + 1
    grown = cv2.dilate(plain.astype(np.uint8), np.ones((k, k), np.uint8)) > 0
    assert np.array_equal(restorer.restore_batch([small], grow_detected=RESIZED_HOLE_GROWTH)[0].mask, grown)
    r = next(restorer.restore_images([wide]))
    back = cv2.resize(grown.astype(np.uint8), (600, 400), interpolation=cv2.INTER_NEAREST) > 0
    assert np.array_equal(r.mask, back) and np.array_equal(restorer.detect_hole(wide), back)
    assert np.array_equal(restorer.detect_hole(gray), restorer.restore_batch([gray])[0].mask)   # 512: as found


def test_hole_mask_errors_name_the_problem(restorer):
    gray = smooth_photo(400, 600)
    with pytest.raises(ValueError, match=r"hole_mask: 512x512 \(width x height\), the image is 600x400"):
        restorer.restore(gray, hole_mask=np.zeros((512, 512), bool))
    with pytest.raises(ValueError, match=r"hole_mask: shape \(400, 600, 3\); a hole mask is HxW"):
        restorer.restore(gray, hole_mask=np.zeros((400, 600, 3), np.uint8))
    with pytest.raises(ValueError, match="an array of numbers or booleans"):
        restorer.restore(gray, hole_mask=np.full((400, 600), "x", object))
    with pytest.raises(ValueError, match="2 images and 1 masks"):
        restorer.restore_batch([smooth_photo(512, 512)] * 2, masks=[None])


def test_fit_mask_keeps_every_damaged_pixel_when_shrinking_or_enlarging():
    line = np.zeros((2000, 3000), bool)
    line[1000, 100:2900] = True                               # 1 px at 3000 px wide: a third of a pixel at 512
    small = fit_mask(line, 512, 512)
    assert small[:, 40:490].any(axis=0).all()                 # not broken up
    big = fit_mask(np.eye(64, dtype=bool), 512, 512)
    assert big[np.arange(512), np.arange(512)].all()


def test_hole_mask_files_are_read_as_stored(tmp_path):
    m16 = np.zeros((40, 60), np.uint16)
    m16[10:20, 5:9] = 1                                       # 16-bit 1: damaged (not scaled away to 0)
    Image.fromarray(m16).save(tmp_path / "a.png")
    assert read_hole_mask(tmp_path / "a.png", (40, 60)).sum() == 40
    Image.fromarray(np.ones((40, 60), bool)).save(tmp_path / "b.png")          # mode 1
    assert read_hole_mask(tmp_path / "b.png", (40, 60)).all()
    with pytest.raises(utils.DataError, match=r"a\.png: 60x40, its image is 61x40"):
        read_hole_mask(tmp_path / "a.png", (40, 61))
    original = (tmp_path / "a.png").read_bytes()
    read_hole_mask(tmp_path / "a.png", (40, 60))
    assert (tmp_path / "a.png").read_bytes() == original     # inputs are never modified


@pytest.mark.slow
def test_restore_cli_hole_masks(tiny_weights, tmp_path):
    inp, masks = tmp_path / "in", tmp_path / "hm"
    inp.mkdir()
    masks.mkdir()
    truth = {"wide": smooth_photo(400, 600), "tall": smooth_photo(450, 300)}
    holes = {k: scratches(*v.shape) for k, v in truth.items()}
    for k, v in truth.items():
        damaged = v.copy()
        damaged[holes[k]] = 255
        Image.fromarray(damaged).save(inp / f"{k}.png")
        Image.fromarray(holes[k].astype(np.uint8) * 255).save(masks / f"{k}.png")
    out, used = tmp_path / "out", tmp_path / "used"
    proc = run_cli("restore.py", inp, out, "--weights", tiny_weights, "--device", "cpu", "--hole-masks", masks,
                   "--masks", used)
    assert proc.returncode == 0, proc.stderr
    for k, v in truth.items():
        restored = utils.gray_of(utils.read_image(out / f"{k}.png", "RGB")).astype(int)
        assert restored.shape == v.shape
        assert np.abs(restored[holes[k]] - v[holes[k]]).mean() < 12
        assert np.array_equal(utils.read_image(used / f"{k}.png", "L") > 0, holes[k])   # --masks: the holes filled

    # --add-detected: the detected hole is added (the filled hole holds the given one)
    proc = run_cli("restore.py", inp, tmp_path / "out2", "--weights", tiny_weights, "--device", "cpu",
                   "--hole-masks", masks, "--add-detected", "--masks", tmp_path / "used2")
    assert proc.returncode == 0, proc.stderr
    assert (utils.read_image(tmp_path / "used2" / "wide.png", "L") > 0)[holes["wide"]].all()


@pytest.mark.parametrize("problem, message", [
    ("missing", r"hm/tall\.png: missing \(the hole mask of tall\.png\)"),
    ("size", r"hm/tall\.png: 300x449, its image is 300x450"),
    ("mode", r"hm/tall\.png: mode RGB, not one channel"),
    ("jpeg", r"hm/tall\.png: a JPEG file, not a PNG"),
])
def test_restore_cli_refuses_bad_hole_masks_by_name_before_any_work(tmp_path, problem, message):
    inp, masks, out = tmp_path / "in", tmp_path / "hm", tmp_path / "out"
    inp.mkdir()
    masks.mkdir()
    for name, shape in (("wide", (400, 600)), ("tall", (450, 300))):
        Image.fromarray(smooth_photo(*shape)).save(inp / f"{name}.png")
        Image.fromarray(np.zeros(shape, np.uint8)).save(masks / f"{name}.png")
    bad = masks / "tall.png"
    if problem == "missing":
        bad.unlink()
    elif problem == "size":
        Image.fromarray(np.zeros((449, 300), np.uint8)).save(bad)
    elif problem == "mode":
        Image.fromarray(np.zeros((450, 300, 3), np.uint8)).save(bad)
    else:
        Image.fromarray(np.zeros((450, 300, 3), np.uint8)).save(bad, format="JPEG")
    # (no --weights needed: the masks are checked before the weights are looked for)
    proc = run_cli("restore.py", inp, out, "--hole-masks", masks, "--weights", tmp_path / "no-weights")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert re.search(message, proc.stderr.replace("\\", "/")), proc.stderr
    assert "one-channel PNG" in proc.stderr and "wide.png" not in proc.stderr
    assert not out.exists()                                   # nothing written


def test_restore_cli_hole_mask_folder_mistakes(tmp_path):
    inp, masks = tmp_path / "in", tmp_path / "hm"
    inp.mkdir()
    masks.mkdir()
    Image.fromarray(smooth_photo(64, 64)).save(inp / "a.png")
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(masks / "a.png")
    proc = run_cli("restore.py", inp, tmp_path / "out", "--hole-masks", inp)
    assert proc.returncode == 2 and "the hole-mask folder is the input folder" in proc.stderr
    proc = run_cli("restore.py", inp, tmp_path / "out", "--hole-masks", masks, "--masks", masks)
    assert proc.returncode == 2
    assert "hm/a.png: this output would overwrite an input file" in proc.stderr.replace("\\", "/")
    proc = run_cli("restore.py", inp, tmp_path / "out", "--hole-masks", tmp_path / "nowhere")
    assert proc.returncode == 2 and "nowhere: hole-mask folder not found" in proc.stderr
    proc = run_cli("restore.py", inp, tmp_path / "out", "--add-detected")
    assert proc.returncode == 2 and "give --hole-masks DIR" in proc.stderr
    assert hole_mask_paths([inp / "a.png"], masks) == {inp / "a.png": masks / "a.png"}


# the app's damage editor, below the browser --------------------------------------------------------------------
def test_the_damage_editor_maps_marks_to_the_images_pixels(tmp_path):
    import app

    h, w = 400, 600                                           # letterboxed in the square canvas
    gray = smooth_photo(h, w)
    detected = np.zeros((h, w), bool)
    detected[100:140, 200:260] = True
    value = app.mark_value(gray, detected)
    assert value["background"].shape == value["layers"][0].shape == (app.MARK_SIZE, app.MARK_SIZE, 4)
    layer = value["layers"][0].copy()
    x0, y0, fw, fh = app.mark_box(h, w)
    assert (x0, fw) == (0, app.MARK_SIZE) and fh == round(app.MARK_SIZE * h / w) and y0 == (app.MARK_SIZE - fh) // 2
    # the user paints a stroke (red, antialiased edges) and erases a corner of the detected hole
    stroke = np.zeros((app.MARK_SIZE, app.MARK_SIZE), np.uint8)
    cv2.line(stroke, (50, 300), (450, 300), 255, 6, lineType=cv2.LINE_AA)
    layer[stroke > 0] = (*app.PAINT_RGB, 200)
    layer[stroke > 0, 3] = (stroke[stroke > 0] * 0.8).astype(np.uint8)
    ex, ey = x0 + round(200 * fw / w), y0 + round(100 * fh / h)
    layer[ey:ey + 10, ex:ex + 10] = 0
    Image.fromarray(layer).save(tmp_path / "layer.png")
    payload = {"background": None, "layers": [{"path": str(tmp_path / "layer.png")}], "composite": None}
    got_detected, painted = app.marks_of(payload, (h, w))
    assert got_detected.shape == painted.shape == (h, w)
    rows = np.nonzero(painted.any(1))[0]
    expect = (300 - y0) * h / fh
    assert abs(rows.mean() - expect) < 2 and painted[int(expect), 100:500].all()
    assert got_detected[115:140, 215:260].all() and not got_detected[102:108, 202:208].any()   # the erased corner
    assert not (got_detected & painted).any() and not got_detected[:90].any()
    hole, note = app.chosen_hole(payload, True, "both", (h, w))
    assert np.array_equal(hole, got_detected | painted) and note == "hole, painted and detected"
    assert np.array_equal(app.chosen_hole(payload, True, "painted", (h, w))[0], painted)
    assert np.array_equal(app.chosen_hole(payload, True, "detected", (h, w))[0], got_detected)
    # the editor still shows another upload (or nothing yet): the detected hole, or a message when only paint counts
    assert app.chosen_hole(payload, False, "both", (h, w))[0] is None
    with pytest.raises(app.UploadError, match="Nothing painted for this image yet"):
        app.chosen_hole(None, True, "painted", (h, w))


def test_app_notes_a_colour_upload_and_says_what_the_damage_tab_crops(restorer):
    import app

    rgb = np.zeros((300, 500, 3), np.uint8)
    rgb[..., 0], rgb[..., 2] = 200, 40
    *_, md = app.restore_array(restorer, rgb, name="colour.png")
    assert "colour photo" in md and "colours are replaced" in md
    *_, md = app.restore_array(restorer, np.repeat(smooth_photo(300, 500)[..., None], 3, -1), name="gray.png")
    assert "colour photo" not in md
    assert "central 300x300 square (of 500x300)" in app.crop_note(300, 500)
    assert "whole photo" in app.crop_note(512, 512)
    # the crop is the centre, never mirrored: a photo whose left half is dark stays so
    photo = np.zeros((512, 700, 3), np.uint8)
    photo[:, 350:] = 255
    crop = app.central_square(photo)
    assert crop.shape == (512, 512, 3) and crop[:, :200].max() == 0 and crop[:, -200:].min() == 255


def test_batch_keeps_each_photos_size_and_names_its_download_after_the_input(restorer, tmp_path):
    import app

    photos = {"wide.png": smooth_photo(400, 600), "tall.jpg": smooth_photo(450, 300)}
    paths = []
    for name, g in photos.items():
        Image.fromarray(g).save(tmp_path / name)
        paths.append(tmp_path / name)
    out, previews, md = app.restore_uploads(restorer, paths, colour="natural")
    assert out.endswith("wide_and_1_more_restored.zip") and "natural colours" in md and "each at its own size" in md
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == ["tall.png", "wide.png"]
        sizes = {n: Image.open(zf.open(n)).size for n in zf.namelist()}
    assert sizes == {"wide.png": (600, 400), "tall.png": (300, 450)}
    assert [p[1] for p in previews] == ["wide.png", "tall.png"] and previews[0][0].shape[1] <= app.PREVIEW_SIDE
    z = tmp_path / "inputs.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in paths:
            zf.write(p, p.name)
    out, previews, md = app.restore_uploads(restorer.with_colour("score"), [z], submission=True, colour="score")
    assert out.endswith("inputs_submission.zip") and "score colours" in md and "512x512" in md
    assert utils.validate_submission(out, ["tall.png", "wide.png"]) and len(previews) == 2
    with pytest.raises(app.UploadError, match="Please upload"):
        app.restore_uploads(restorer, [])

