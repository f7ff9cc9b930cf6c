"""The full-resolution biharmonic fill (utils.biharmonic): scikit-image's fill within one gray level, fast."""
import cv2
import numpy as np
import pytest
import scipy.sparse
from PIL import Image, ImageDraw
from skimage import data
from skimage.restoration import inpaint_biharmonic

import utils.inference.biharmonic as bh
from utils.inference.biharmonic import biharmonic_fill


def photo(size: int) -> np.ndarray:
    """A natural gray image (scikit-image's camera man), size x size."""
    return np.asarray(Image.fromarray(data.camera()).resize((size, size), Image.BILINEAR))


def polygon(size: int, points) -> np.ndarray:
    canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in points], fill=1)
    return np.asarray(canvas).astype(bool)


def star(size: int, centre, r_out: float, r_in: float, n: int = 7) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False)
    radii = np.where(np.arange(2 * n) % 2, r_in, r_out)
    return polygon(size, np.stack([centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)], 1))


def check_against_skimage(gray: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """biharmonic_fill vs scikit-image: within one gray level in the hole, the rest and the inputs untouched."""
    gray_before, mask_before = gray.copy(), mask.copy()
    out = biharmonic_fill(gray, mask)
    assert np.array_equal(gray, gray_before) and np.array_equal(mask, mask_before)      # inputs not modified
    assert out.dtype == np.uint8 and out.shape == gray.shape
    assert np.array_equal(out[~mask], gray[~mask])
    ref = np.clip(inpaint_biharmonic(gray / 255.0, mask) * 255, 0, 255).round()
    diff = np.abs(out.astype(int) - ref)[mask]
    assert diff.max() <= 1, f"{diff.max()} gray levels off scikit-image"
    return out


def ellipse(size):
    y, x = np.mgrid[0:size, 0:size]
    return ((y - 0.45 * size) / (0.3 * size)) ** 2 + ((x - 0.55 * size) / (0.2 * size)) ** 2 < 1


def ring(size):        # a hole with an island of known pixels inside
    y, x = np.mgrid[0:size, 0:size]
    r = np.hypot(y - size / 2, x - size / 2)
    return (r < 0.35 * size) & (r > 0.12 * size)


def thin_lines(size):  # one-pixel-wide strokes: a diagonal and a vertical one
    m = np.zeros((size, size), bool)
    i = np.arange(10, size - 10)
    m[i, i] = True
    m[5:size - 20, size // 3] = True
    return m


@pytest.mark.parametrize("make", [ellipse, ring, thin_lines, lambda s: star(s, (s / 2, s / 2), 0.45 * s, 0.12 * s)],
                         ids=["ellipse", "ring", "thin lines", "star"])
def test_equals_scikit_image_on_hole_shapes(make):
    check_against_skimage(photo(96), make(96))


def test_a_hole_over_40_percent_of_the_image():
    mask = star(128, (64, 60), 75, 45, n=9)
    assert mask.mean() > 0.4
    check_against_skimage(photo(128), mask)


def test_a_hole_through_several_coarse_levels():
    """256 px, 32k unknowns: five levels, the W-cycle at the third and fourth."""
    mask = polygon(256, [(20, 30), (200, 10), (240, 150), (130, 245), (40, 200), (90, 120)])
    check_against_skimage(photo(256), mask)


@pytest.mark.parametrize("where", ["left edge", "top-left corner", "whole row", "bottom-right corner"])
def test_holes_at_the_image_border(where):
    """The image border is a mirror (Neumann) boundary, as in scikit-image."""
    size = 96
    mask = np.zeros((size, size), bool)
    if where == "left edge":
        mask = polygon(size, [(0, 20), (40, 30), (30, 70), (0, 80)])
    elif where == "top-left corner":
        mask[:30, :45] = True
    elif where == "whole row":
        mask[40:47, :] = True
        mask[30:60, 50:58] = True
    else:
        mask[-25:, -33:] = True
        mask[-40:, -3:] = True
    check_against_skimage(photo(size), mask)


def test_an_image_whose_sides_do_not_halve():
    """97 x 131 with a hole across the whole width: no coarse level fits, the window's system is solved directly."""
    gray = photo(131)[:97]
    mask = np.zeros(gray.shape, bool)
    mask[40:50, :] = True
    mask[20:80, 60:70] = True
    check_against_skimage(gray, mask)


def test_several_components_coupled_or_not():
    """Holes two pixels apart share equations (the stencil reaches two pixels); far ones are solved apart."""
    size = 96
    mask = np.zeros((size, size), bool)
    mask[10:30, 10:25] = True
    mask[10:30, 27:40] = True         # two columns of known pixels between: coupled with the first
    mask[60:80, 55:90] = True
    mask[50, 5] = True                # a one-pixel hole
    check_against_skimage(photo(size), mask)


def test_one_pixel_hole():
    mask = np.zeros((64, 64), bool)
    mask[31, 17] = True
    check_against_skimage(photo(64), mask)


def test_no_hole_returns_the_image_unchanged():
    gray = photo(64)
    out = biharmonic_fill(gray, np.zeros(gray.shape, bool))
    assert np.array_equal(out, gray) and out is not gray


def round_polygon(size: int) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, 14, endpoint=False)
    radii = 0.47 * size * (0.85 + 0.15 * np.random.default_rng(0).random(14))
    return polygon(size, np.stack([size / 2 + radii * np.cos(angles), size / 2 + radii * np.sin(angles)], 1))


@pytest.mark.parametrize("make", [round_polygon, lambda s: star(s, (s / 2, s / 2), 0.47 * s, 0.1 * s, n=6)],
                         ids=["round polygon", "star with thin spikes"])
def test_large_hole_converges_in_few_iterations(monkeypatch, make):
    """Competition-sized holes (480 px box; the thin spikes are the slowest to converge): a handful of
    multigrid-preconditioned iterations, and the result within one gray level of a solve to a 100 times tighter
    tolerance (the error estimate holds)."""
    size = 512
    mask, gray = make(size), photo(size)
    cycles = []
    call = bh._Multigrid.__call__

    def counted(self, b, level=0):
        cycles.append(level)
        return call(self, b, level)

    monkeypatch.setattr(bh._Multigrid, "__call__", counted)
    out = biharmonic_fill(gray, mask)
    assert 0 < cycles.count(0) <= 8
    tight = biharmonic_fill(gray, mask, tol=0.005)
    assert np.abs(out.astype(int) - tight).max() <= 1


@pytest.mark.parametrize("h, w", [(24, 40), (26, 42), (2, 6)])
def test_restriction_is_the_transpose_of_the_interpolation(h, w):
    """_restrict is P^T for P = cv2.resize INTER_LINEAR at 2x (cell-centred bilinear, edges replicated):
    <P e, r> = <e, P^T r> for random e and r, on windows whose sides halve (to even or odd coarse sides)."""
    rng = np.random.default_rng(0)
    e = rng.random((h // 2, w // 2), dtype=np.float32)
    r = rng.random((h, w), dtype=np.float32)
    up = cv2.resize(e, (w, h), interpolation=cv2.INTER_LINEAR)
    down = bh._restrict(r)
    assert down.shape == e.shape
    assert np.isclose(np.vdot(up.astype(np.float64), r), np.vdot(e.astype(np.float64), down), rtol=1e-5)


def test_coarse_operators_are_galerkin_products():
    """Each coarse level's operator is P^T A P exactly (P: bilinear interpolation cut to the unknowns), the image
    border mirrored: here a hole touching two sides of a 32 x 32 window."""
    size = 32
    mask = star(size, (6, 10), 20, 8)
    lap1 = lambda n: scipy.sparse.diags([1.0, -2.0, 1.0], [-1, 0, 1], (n, n), format="lil")  # noqa: E731
    one = lap1(size)
    one[0, 0] = one[-1, -1] = -1        # mirrored ends (Neumann)
    eye = scipy.sparse.identity(size)
    lap = scipy.sparse.kron(one, eye) + scipy.sparse.kron(eye, one)
    idx = np.flatnonzero(mask)
    a = (lap @ lap).tocsr()[idx][:, idx]
    # bilinear interpolation from the 16 x 16 cells (cell-centred, edges replicated) onto the hole's pixels
    ys, xs = np.divmod(idx, size)
    p = scipy.sparse.lil_matrix((len(idx), (size // 2) ** 2))
    for row, (y, x) in enumerate(zip(ys, xs)):
        for cy, wy in ((y // 2, 0.75), (min(max(y // 2 + (1 if y % 2 else -1), 0), size // 2 - 1), 0.25)):
            for cx, wx in ((x // 2, 0.75), (min(max(x // 2 + (1 if x % 2 else -1), 0), size // 2 - 1), 0.25)):
                p[row, cy * (size // 2) + cx] += wy * wx
    coarse = bh._fine_level(mask).coarsen()
    ours, cells = coarse.matrix()
    p = p.tocsr()[:, cells]
    assert np.abs((p.T @ a @ p - ours).toarray()).max() < 1e-9


@pytest.mark.parametrize("gray, mask, message", [
    (np.zeros((8, 8)), np.zeros((8, 8), bool), "uint8 gray"),
    (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), bool), "uint8 gray"),
    (np.zeros((8, 8), np.uint8), np.zeros((8, 9), bool), "differ in size"),
    (np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8), "bool"),
    (np.zeros((8, 8), np.uint8), np.ones((8, 8), bool), "no known pixel"),
], ids=["float image", "RGB image", "mask size", "mask dtype", "all hole"])
def test_bad_input_is_refused_clearly(gray, mask, message):
    with pytest.raises(ValueError, match=message):
        biharmonic_fill(gray, mask)


def blas_threads() -> list[tuple[str, int]]:
    """(library, threads) of each BLAS library loaded in this process."""
    from threadpoolctl import threadpool_info

    return [(i["filepath"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]


def test_blas_runs_on_one_thread_inside_the_fill_and_is_restored_after(monkeypatch):
    """OpenBLAS's woken worker threads spin after a call and slowed the network that runs next; the fill keeps BLAS
    on one thread while it solves and gives the setting back."""
    before = blas_threads()
    seen = []
    solve = bh._solve

    def spy(*args, **kwargs):
        seen.extend(n for _, n in blas_threads())
        return solve(*args, **kwargs)

    monkeypatch.setattr(bh, "_solve", spy)
    gray = data.camera()
    mask = np.zeros(gray.shape, bool)
    mask[200:260, 150:300] = True
    biharmonic_fill(gray, mask)
    assert seen and set(seen) == {1}
    assert blas_threads() == before


def test_fills_in_several_threads_leave_blas_as_they_found_it():
    """The BLAS limit is process-wide: fills running at once (the app's requests) take turns, so none restores a
    setting that another one made."""
    from concurrent.futures import ThreadPoolExecutor

    before = blas_threads()
    gray = data.camera()
    masks = []
    for k in range(6):
        mask = np.zeros(gray.shape, bool)
        mask[100 + 40 * k:140 + 40 * k, 100:300] = True
        masks.append(mask)
    with ThreadPoolExecutor(4) as pool:
        filled = list(pool.map(lambda m: biharmonic_fill(gray, m), masks))
    assert all(np.array_equal(f, biharmonic_fill(gray, m)) for f, m in zip(filled, masks))
    assert blas_threads() == before
