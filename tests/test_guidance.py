"""Colour guidance: hints (the colour at the point, along the luminance's regions, not across a strong edge, several
combined), a reference photo's hues as the target, their errors (API and restore.py); natural colours' fade of pale
tints, and the confidently-wrong measure."""
import numpy as np
import pytest
import torch
from PIL import Image

import utils
from utils.inference.color import compose_rgb, pil_luma, rgb_to_cbcr_np
from utils.inference.guidance import HintError, apply_hints, check_hints, parse_hint, reference_prior
from utils.inference.hue import BINS, angle_histogram
from utils.inference.natural import FadeConfig, fade_pale


def delta_e(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CIEDE2000 between uint8 RGB arrays of one shape."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    return deltaE_ciede2000(rgb2lab(a), rgb2lab(b))


def on_luma(colour, luma: int) -> np.ndarray:
    """The hint colour's chroma on the given luminance (what a hint paints there), as a 1x1 RGB image."""
    return compose_rgb(np.array([[luma]], np.uint8), rgb_to_cbcr_np(np.array([[colour]], np.uint8)) + 0.5)


def two_regions(left: int = 90, right: int = 200, size: int = 256, seed: int = 0) -> np.ndarray:
    """A gray image of two flat, lightly noisy halves with a strong edge between them (column size // 2)."""
    g = np.full((size, size), left, np.float32)
    g[:, size // 2:] = right
    g += np.random.default_rng(seed).normal(0, 2.0, g.shape)
    return np.clip(g, 0, 255).astype(np.uint8)


def colour_of_luma(luma: int, hue: str) -> tuple[int, int, int]:
    """A clearly coloured (r, g, b) whose PIL luma is `luma`."""
    base = {"red": (1.0, 0.25, 0.2), "blue": (0.25, 0.4, 1.0), "green": (0.3, 1.0, 0.3)}[hue]
    for scale in np.linspace(0.05, 3, 600):
        rgb = tuple(int(min(255, round(c * scale * 180))) for c in base)
        if pil_luma(np.array([[rgb]]))[0, 0] == luma:
            return rgb
    raise AssertionError(f"no {hue} of luma {luma}")


def test_a_hint_paints_its_colour_at_the_point_and_its_region_but_not_across_a_strong_edge():
    gray = two_regions()
    base = np.repeat(gray[..., None], 3, -1)
    red = colour_of_luma(int(gray[128, 40]), "red")
    out = apply_hints(base, [(40, 128, red)])
    assert np.array_equal(pil_luma(out), gray)                               # luminance exact
    assert delta_e(out[128:129, 40:41], np.array([[red]], np.uint8))[0, 0] <= 3.0
    # the hint's region (the left half) takes its colour, far from the point too
    far = delta_e(out[20:236, 8:110], np.repeat(np.repeat(on_luma(red, 90), 216, 0), 102, 1))
    assert np.median(far) < 6, np.median(far)
    # across the strong edge, nothing changes: the right half keeps its (gray) colour
    assert np.abs(out[:, 140:].astype(int) - base[:, 140:]).max() <= 1


def test_several_hints_combine_each_in_its_own_region():
    gray = np.full((256, 256), 70, np.uint8)                  # four quadrants of other luminance
    gray[:128, 128:], gray[128:, :128], gray[128:, 128:] = 150, 210, 110
    gray = np.clip(gray + np.random.default_rng(1).normal(0, 2, gray.shape), 0, 255).astype(np.uint8)
    red, blue, green = (colour_of_luma(int(gray[y, x]), h) for (x, y), h in
                        (((60, 60), "red"), ((190, 60), "blue"), ((60, 190), "green")))
    hints = [(60, 60, red), (190, 60, blue), (60, 190, green)]
    out = apply_hints(np.repeat(gray[..., None], 3, -1), hints)
    assert np.array_equal(pil_luma(out), gray)
    for x, y, colour in hints:                                # each hint's own colour at its point
        assert delta_e(out[y:y + 1, x:x + 1], np.array([[colour]], np.uint8))[0, 0] <= 3.0
    theta = np.degrees(np.arctan2(*np.moveaxis(rgb_to_cbcr_np(out), -1, 0)[::-1]))
    hue_of = {name: np.degrees(np.arctan2(*rgb_to_cbcr_np(np.array([[c]], np.uint8))[0, 0][::-1]))
              for name, c in (("red", red), ("blue", blue), ("green", green))}
    for (ys, xs), name in (((slice(20, 108), slice(20, 108)), "red"), ((slice(20, 108), slice(148, 236)), "blue"),
                           ((slice(148, 236), slice(20, 108)), "green")):
        off = np.abs((theta[ys, xs] - hue_of[name] + 180) % 360 - 180)
        assert np.median(off) < 10, (name, np.median(off))
    assert np.abs(out[148:236, 148:236].astype(int) - gray[148:236, 148:236, None]).max() <= 1   # no hint there


class NoHole(torch.nn.Module):
    """A mask net that finds no hole (the tiny weights' untrained one marks flat images as all hole)."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, gray):
        return torch.full_like(gray, -20.0)


def no_hole_restorer(tiny_weights, **kwargs):
    restorer = utils.Restorer.from_dir(tiny_weights, device="cpu", **kwargs)
    restorer.mask_net = NoHole()
    return restorer


def test_restore_with_hints_through_the_api(tiny_weights):
    restorer = no_hole_restorer(tiny_weights)
    gray = two_regions(size=512)
    colour = (40, 90, 220)
    r = next(restorer.restore_images([gray], hints=[(100, 256, colour)]))
    plain = next(restorer.restore_images([gray]))
    assert not r.mask.any()
    assert np.array_equal(pil_luma(r.restored), gray)                       # the input's luminance
    want = on_luma(colour, int(gray[256, 100]))
    assert delta_e(r.restored[256:257, 100:101], want)[0, 0] <= 3.0
    assert delta_e(r.restored[256:257, 100:101], plain.restored[256:257, 100:101])[0, 0] > 10   # the hint changed it
    # beyond the strong edge at x = 256, the colours stay as they were without the hint
    assert np.percentile(delta_e(r.restored[:, 280:], plain.restored[:, 280:]), 99) < 1.0
    # restore() takes them too, and a non-square input gets its hints in its own pixels
    wide = np.repeat(gray[:, :, None], 3, -1)[:300]
    out = restorer.restore(wide, hints=[(100, 150, colour)])
    assert out.shape == wide.shape
    assert delta_e(out[150:151, 100:101], on_luma(colour, int(pil_luma(out)[150, 100])))[0, 0] <= 3.0


@pytest.mark.parametrize("hints, message", [
    ([(600, 10, (255, 0, 0))], r"hint 1: \(600, 10\) is outside the image \(512x512"),
    ([(10, 10, (255, 0, 0)), (-3, 4, (0, 0, 255))], r"hint 2: x and y must be finite and 0 or more"),
    ([(10, 10, (300, 0, 0))], r"hint 1: the colour must be \(r, g, b\), three integers 0-255"),
    ([(10, 10, "#12345")], r"hint 1: colour '#12345': expected #RRGGBB"),
    ([(10, "top", (1, 2, 3))], r"hint 1: x and y must be numbers"),
    ([(10, 10)], r"hint 1: expected \(x, y, \(r, g, b\)\)"),
    ("10,10,#ff0000", r"hints must be a list of \(x, y, \(r, g, b\)\), got str"),
])
def test_bad_hints_are_refused_naming_the_hint_and_the_problem(hints, message):
    with pytest.raises(HintError, match=message):
        check_hints(hints, 512, 512)


def test_hint_parsing_for_the_command_line():
    assert parse_hint("120,340,#c03020") == (120.0, 340.0, (192, 48, 32))
    assert parse_hint(" 5.5 , 6 , A0B0C0 ") == (5.5, 6.0, (160, 176, 192))
    for text, message in (("120,340", "expected X,Y,#RRGGBB"), ("a,340,#c03020", "X and Y must be numbers"),
                          ("1,2,#zz0000", "expected #RRGGBB")):
        with pytest.raises(HintError, match=message):
            parse_hint(text)


def test_a_reference_photo_sets_the_hue_target(tiny_weights):
    restorer = no_hole_restorer(tiny_weights)
    gray = two_regions(size=512, left=120, right=150)
    green = np.zeros((64, 96, 3), np.uint8)
    green[..., 1], green[..., 0] = 190, 60
    target = np.argmax(angle_histogram(green))
    near = lambda im: angle_histogram(im)[np.abs((np.arange(BINS) - target + BINS // 2) % BINS - BINS // 2) <= 20].sum()  # noqa: E731
    plain = restorer.restore(gray)
    guided = restorer.restore(gray, reference=green)
    assert near(guided) > 0.9 > near(plain)       # the hues within 20 degrees of the reference's
    assert np.array_equal(pil_luma(guided), pil_luma(plain))      # the same luminance, other hues
    # the remap's strength: full for natural, the stored one for score, a number as given
    stored = no_hole_restorer(tiny_weights, hue=utils.HueConfig(strength=0.4, edge_radius=32))
    assert stored.with_guidance(reference=green).colour_strength == 1.0
    assert stored.with_guidance(reference=green).hue.edge_radius == utils.guidance.REFERENCE_EDGE_RADIUS < 32
    assert stored.with_colour("score").with_guidance(reference=green).colour_strength == 0.4
    assert stored.with_guidance(reference=green).with_colour(0.25).colour_strength == 0.25
    assert stored.with_guidance(reference=green).with_colour("natural").colour_strength == 1.0


@pytest.mark.parametrize("reference, message", [
    (np.full((32, 32, 3), 128, np.uint8), "has no colour"),
    (np.zeros((32, 32), np.uint8), r"must be an HxWx3 RGB colour photo, got shape \(32, 32\)"),
    (np.zeros((32, 32, 3), np.float32), "must be a uint8 RGB image"),
])
def test_bad_references_are_refused_naming_the_problem(reference, message):
    with pytest.raises(ValueError, match=f"the reference: {message}"):
        reference_prior(reference)


def test_natural_colours_fade_pale_tints_and_keep_clear_colours():
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[:4] = (140, 128, 112)                                         # a pale beige tint
    rgb[4:] = (40, 90, 220)                                           # a clear blue
    out = fade_pale(rgb, FadeConfig(pale_chroma=0.1))
    assert np.array_equal(pil_luma(out), pil_luma(rgb))
    chroma = np.hypot(*np.moveaxis(rgb_to_cbcr_np(out), -1, 0))
    before = np.hypot(*np.moveaxis(rgb_to_cbcr_np(rgb), -1, 0))
    assert chroma[:4].max() < 0.25 * before[:4].min()                 # the tint mostly gone
    assert np.abs(out[4:].astype(int) - rgb[4:]).max() <= 1           # the clear colour kept
    with pytest.raises(ValueError, match=r"pale_chroma must be in \(0, 0.5\]"):
        FadeConfig(pale_chroma=0.0)


def test_only_natural_colours_fade(tiny_weights):
    """Natural colours fade pale tints when the weights give a fade; score colours, a strength and a reference
    do not; without a fade in the weights, natural colours are the colour net's own."""
    gray = two_regions(size=512)
    restorer = no_hole_restorer(tiny_weights, fade=FadeConfig(pale_chroma=0.5))      # fades all but the clearest
    own = no_hole_restorer(tiny_weights).restore(gray)
    chroma = lambda im: np.hypot(*np.moveaxis(rgb_to_cbcr_np(im), -1, 0)).mean()   # noqa: E731
    assert chroma(own) > 0.005
    assert restorer.fades and chroma(restorer.restore(gray)) < 0.1 * chroma(own)
    assert np.array_equal(restorer.with_colour(0.0).restore(gray), own)
    assert not restorer.with_colour("score").fades
    assert not restorer.with_guidance(reference=np.dstack([np.zeros((8, 8))] * 2 + [np.full((8, 8), 200)])
                                      .astype(np.uint8)).fades


def test_restore_cli_hints_and_reference(sample_data, tiny_weights, tmp_path):
    from conftest import run_cli

    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "TEST_000.png").write_bytes((sample_data / "test_input" / "TEST_000.png").read_bytes())
    Image.fromarray(two_regions(size=200)).save(inp / "small.png")          # the second hint is outside it
    colour = (40, 90, 220)
    out = tmp_path / "out"
    proc = run_cli("restore.py", inp, out, "--weights", tiny_weights, "--device", "cpu",
                   "--hint", "100,256,#285adc", "--hint", "400,40,#c03020")
    assert proc.returncode == 1, proc.stderr                                # the small image is skipped, named
    assert "small.png: hint 1: (100, 256) is outside the image (200x200" in proc.stderr
    restored = utils.read_image(out / "TEST_000.png", "RGB")
    assert delta_e(restored[256:257, 100:101], on_luma(colour, int(pil_luma(restored)[256, 100])))[0, 0] <= 3.0
    assert not (out / "small.png").exists()

    green = np.zeros((40, 60, 3), np.uint8)
    green[..., 1], green[..., 0] = 190, 60
    Image.fromarray(green).save(tmp_path / "green.png")
    (inp / "small.png").unlink()
    proc = run_cli("restore.py", inp, tmp_path / "out2", "--weights", tiny_weights, "--device", "cpu",
                   "--reference", tmp_path / "green.png")
    assert proc.returncode == 0, proc.stderr
    target = np.argmax(angle_histogram(green))
    hist = angle_histogram(utils.read_image(tmp_path / "out2" / "TEST_000.png", "RGB"))
    assert hist[np.abs((np.arange(BINS) - target + BINS // 2) % BINS - BINS // 2) <= 20].sum() > 0.9


@pytest.mark.parametrize("args, message", [
    (["--hint", "100,256"], "argument --hint: hint '100,256': expected X,Y,#RRGGBB"),
    (["--hint", "100,256,red"], "argument --hint: hint '100,256,red': colour 'red': expected #RRGGBB"),
    (["--reference", "{tmp}/missing.png"], "--reference {tmp}/missing.png"),
    (["--reference", "{tmp}/gray.png"], "{tmp}/gray.png: has no colour"),
    (["--reference", "{tmp}/gray.png", "--colour", "natural"], "--reference with --colour natural"),
])
def test_restore_cli_bad_hints_and_references_are_clear_errors(args, message, tiny_weights, tmp_path):
    from conftest import run_cli

    (tmp_path / "in").mkdir()
    Image.new("L", (64, 64), 100).save(tmp_path / "in" / "a.png")
    Image.new("RGB", (64, 64), (120, 120, 120)).save(tmp_path / "gray.png")
    proc = run_cli("restore.py", tmp_path / "in", tmp_path / "out", "--weights", tiny_weights, "--device", "cpu",
                   *(a.format(tmp=tmp_path) for a in args))
    assert proc.returncode == 2 and message.format(tmp=tmp_path) in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_confidently_wrong_counts_clear_colour_on_gray_truth_or_another_hue():
    from utils.inference.natural import confidently_wrong

    truth = np.zeros((4, 4, 3), np.uint8)
    truth[:2] = (128, 128, 128)                        # top: near-gray truth
    truth[2:] = (200, 60, 50)                          # bottom: red truth
    pred = truth.copy()
    pred[0, :2] = (60, 140, 200)                       # clear blue on gray: wrong
    pred[0, 2:] = (132, 126, 124)                      # a faint tint on gray: not clearly coloured
    pred[2, :2] = (60, 160, 70)                        # green for red: wrong
    pred[3, :2] = (200, 110, 40)                       # orange for red: within 60 degrees
    r = confidently_wrong(pred, truth)
    assert r["share"] == 4 / 16
    assert r["chroma"] > 0 and r["truth_chroma"] > 0
    with pytest.raises(ValueError, match=r"the prediction is \(4, 4, 3\), the truth \(2, 2, 3\)"):
        confidently_wrong(pred, truth[:2, :2])
