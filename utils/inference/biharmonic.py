"""Biharmonic inpainting at full resolution, fast enough for the inference path: `biharmonic_fill`.

The fill is scikit-image's `inpaint_biharmonic`: the hole's pixels u minimise the sum of squares of the 5-point
Laplacian L of the whole image (mirrored, Neumann boundary at the image border), i.e. they solve A u = b with
A = P^T L^2 P (P picks the hole's pixels; A is symmetric positive definite), and the result is clipped to the
known pixels' range. scikit-image solves it with a sparse LU factorisation. Here each group of hole pixels that
the 13-point stencil of L^2 couples is solved on a window around it, the unknowns being its pixels only, by
conjugate gradients in float64, preconditioned by a geometric multigrid cycle in float32:

- levels by 2x2 cell-centred coarsening (the window is aligned so that its sides halve); a coarse cell is an
  unknown where any of its four fine pixels is; the prolongation P is bilinear interpolation, cut to each level's
  unknowns;
- coarse operators are the exact Galerkin products P^T A P: rows equal to the interior stencil are applied by
  `cv2.filter2D`, the others (near the hole's edge, where the mask cuts the interpolation) are kept as a band of
  explicit rows (a sparse matrix), each a fixed linear map of the 4x4 fine rows below it;
- Chebyshev smoothing (Jacobi-scaled; degree 2 on the finest level, 3 below; the largest eigenvalue by power
  iteration), two corrections from below on the third and fourth levels (a W-cycle there) and one elsewhere, the
  coarsest level's inverse;
- a start from a pyramid fill (`cv2.pyrDown`/`pyrUp` of the known pixels), corrected by full multigrid (each level
  starts from the one below's solution and runs one cycle on it; the finest level smooths it only);
- stopped when the preconditioned residual, the multigrid's estimate of the error left, is below the tolerance
  (0.5 gray levels), that last estimate added: the error left then measured at most 0.53 gray levels (against
  solves to 0.0025, on the 144 held-out holes and 100 polygons drawn on held-out truths, half of them with box
  sides of 400-500 px), so the rounded fill is within one gray level of the exact one.

What did not work: rediscretised coarse levels (L^2 on a coarse mask of the cells inside the hole, or touching
it) gave no working preconditioner (no convergence in 100 iterations): the fill hangs on the boundary's normal
derivative, which a coarse clamped boundary misplaces; coarse cells whose interpolation lies inside the hole
(Galerkin products that stay plain stencils) contract the error by 0.8 per two-grid cycle, against 0.17 with the
cut interpolation; quadratic or cubic interpolation instead of bilinear converge no faster (a two-grid cycle with an
exact coarse solve: the same error per iteration on the slowest holes); a V-cycle throughout needs about 1.5 times
the iterations; float32 throughout is off by up to
100 gray levels on a 480 px hole (its smallest eigenvalue is ~3e-8 of the largest, and A u sums terms of ~5000
that cancel); scipy's sparse Galerkin products cost ~200 ms on such a hole, hence the band rows. Tried for speed
and not kept (docs/experiments.md): a full cycle on the finest level of the full-multigrid start, the setup
overlapped in a thread, the element-wise work in torch's threads, W-cycles on more levels, a coarsest level of 400
unknowns, a scaled coarse correction, more smoothing on the finest level, exact solves of the coarser levels (fewer
cycles, but factorisations that cost more than the cycles saved), a stop at 0.7-0.9 gray levels.

Measured on 2 cores: competition polygons with both box sides >= 440 px (50k-187k pixels; `research/hole_benchmark.py
heldout --largest 20`, the fastest of 5 calls) take 55-62 ms median and 77-90 ms at most in five runs (Telea
70-75 / 118-122 ms in the same runs); one or two threads alike. On the 144 held-out holes (800-98k pixels) no pixel
differs from scikit-image by more than one gray level after rounding (1.8% of them by one); scikit-image takes
0.14 s median there, 0.9 s for the largest 10%, up to 4.0 s. On the slowest holes (thin-spiked stars) the time is
the set-up (15-20 ms), the start (~10 ms) and 4-5 cycles of 6-7 ms with 2-3 ms of the outer float64 iteration each,
spread over ~2000 OpenCV and NumPy calls; the coarser levels (~12 ms of a fill) are mostly those calls' own cost.
Only compiled kernels would remove that, and mainly there: a plain numba kernel of the finest level's smoothing step
took 4 ms against OpenCV's 0.6 ms. The pre-fills compared: the model card (weights/README.md) and docs/experiments.md.

BLAS runs on one thread while a fill solves (threadpoolctl; fills in several threads take turns): OpenBLAS's
worker threads, once woken by the small products here, spin for a while and took the CPU from the network that
runs next (the inpainter took twice its time after a fill).
"""
from __future__ import annotations

import functools
import threading

import cv2
import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

__all__ = ["biharmonic_fill"]

# L^2 for the 5-point Laplacian L: the 13-point stencil
_K = np.array([[0, 0, 1, 0, 0], [0, 2, -8, 2, 0], [1, -8, 20, -8, 1], [0, 2, -8, 2, 0], [0, 0, 1, 0, 0]], np.float64)
_OFFSETS = np.array([(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)])      # the 5x5 offsets, row-major
_MIRROR_Y = np.array([(4 - i // 5) * 5 + i % 5 for i in range(25)])                # offset index, dy -> -dy
_MIRROR_X = np.array([(i // 5) * 5 + 4 - i % 5 for i in range(25)])                # offset index, dx -> -dx
_MIRRORS = np.stack([np.arange(25), _MIRROR_Y, _MIRROR_X, _MIRROR_Y[_MIRROR_X]])    # none, dy, dx, both
_FINE_TAPS = np.array([(ty, tx) for ty in range(-1, 3) for tx in range(-1, 3)])     # the 4x4 fine rows, row-major
_COARSEST = 200          # unknowns at the coarsest level (its inverse formed once by dense Cholesky)
_DEGREES = (2, 3)        # Chebyshev steps before and after each coarse correction: finest level, the others
_W_LEVELS = (2, 3)       # levels that correct twice from below (a W-cycle there; V-cycles elsewhere)
_LOW = 1 / 16            # the smoother's target: eigenvalues of D^-1 A in [_LOW * lmax, lmax]
_POWER_STEPS, _POWER_SAFETY = 6, 1.2      # the bound came out 0.84-1.0 of the largest eigenvalue after 6 steps


def _galerkin_taps() -> np.ndarray:
    """(16, 25, 25): for each fine tap t (t in -1..2 per axis, row-major), the map from the fine row S(2j + t, d)
    (25 offsets d) to the coarse row j (25 offsets o): w(t) w(u) with u = t + d - 2o per axis, w the weights of
    cell-centred bilinear interpolation."""
    w = {-1: 0.25, 0: 0.75, 1: 0.75, 2: 0.25}
    one = np.zeros((4, 5, 5))
    for ti, t in enumerate(range(-1, 3)):
        for di, d in enumerate(range(-2, 3)):
            for oi, o in enumerate(range(-2, 3)):
                one[ti, di, oi] = w[t] * w.get(t + d - 2 * o, 0.0)
    return np.einsum("ace,bdf->abcdef", one, one).reshape(16, 25, 25)


_TAPS = _galerkin_taps()


@functools.lru_cache(maxsize=16)
def _reflected(h: int, w: int) -> np.ndarray:
    """The flat indices of an h x w window padded by 2 as cv2.BORDER_REFLECT pads it (fedcba|abcdef), flat too."""
    out = np.pad(np.arange(h * w, dtype=np.int32).reshape(h, w), 2, mode="symmetric").ravel()
    out.flags.writeable = False
    return out


def _neighbours(idx: np.ndarray, h: int, w: int, steps: np.ndarray = _OFFSETS) -> np.ndarray:
    """(len(idx), len(steps)): the flat indices of the pixels at `steps` (dy, dx; |d| <= 2) from the pixels `idx`
    of an h x w window, mirrored at its edges."""
    ys, xs = np.divmod(idx, w)
    wp = w + 4
    return _reflected(h, w)[((ys + 2) * wp + xs + 2)[:, None] + (steps[:, 0] * wp + steps[:, 1])]


class _Level:
    """One level's operator: `stencil` (5x5) on the rows in `interior`, explicit rows (`band_coef`, at the 25
    offsets, mirrored at the window's edges: columns `band_cols`) at `band_idx`; zero outside `mask`. The finest
    level (`exact`) is the stencil on every row (cv2.BORDER_REFLECT is the image border's Neumann condition): its
    band rows serve the level below only."""

    def __init__(self, mask, stencil, interior, band_idx, band_coef, band_cols, exact: bool = False):
        self.mask, self.interior, self.stencil, self.exact = mask, interior, stencil, exact
        self.band_idx, self.band_coef = band_idx, band_coef
        self.fmask = mask.astype(np.float32)
        self.stencil32 = stencil.astype(np.float32)
        self.dinv = self.fmask * np.float32(1 / stencil[2, 2])      # D^-1, zero outside the mask
        if exact:       # Jacobi scaling by the interior diagonal; ||L^2|| <= 64
            self.lmax = 64 / float(stencil[2, 2])
            return
        n = len(band_idx)
        self.band = scipy.sparse.csr_matrix((band_coef.astype(np.float32).ravel(), band_cols.ravel(),
                                             np.arange(0, 25 * n + 1, 25, dtype=np.int32)), shape=(n, mask.size))
        self.dinv.ravel()[band_idx] = 1 / np.where(band_cols == band_idx[:, None], band_coef, 0.0).sum(1)
        self.lmax = 0.0

    def apply(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """y = A x (returned) on the mask's rows; x is zero outside the mask, y is not (those rows are never read:
        D^-1 is zero there, and residuals are masked before they are restricted)."""
        cv2.filter2D(x, -1, self.stencil32, dst=y, borderType=cv2.BORDER_REFLECT)
        if not self.exact and len(self.band_idx):
            y.ravel()[self.band_idx] = self.band @ x.ravel()
        return y

    def coarsen(self) -> _Level:
        """The Galerkin level below (both sides of this level are even)."""
        h, w = self.mask.shape
        hc, wc = h // 2, w // 2
        m = self.mask
        cmask = m[0::2, 0::2] | m[1::2, 0::2] | m[0::2, 1::2] | m[1::2, 1::2]
        # coarse rows equal to the coarse stencil: their 4x4 fine rows plain, their 5x5 coarse neighbours unknowns
        fine_ok = cv2.erode(np.pad(self.interior, 1).astype(np.uint8), np.ones((4, 4), np.uint8), anchor=(0, 0),
                            borderType=cv2.BORDER_CONSTANT, borderValue=0)[:h:2, :w:2] > 0
        near_ok = cv2.erode(cmask.astype(np.uint8), np.ones((5, 5), np.uint8), borderType=cv2.BORDER_CONSTANT,
                            borderValue=0) > 0
        interior = cmask & fine_ok & near_ok
        band = np.flatnonzero(cmask & ~interior)
        jy, jx = np.divmod(band, wc)
        # the fine rows at p = 2j + t, from the mirrored extension across the window's edges (offsets mirrored too)
        p = _neighbours(2 * jy * w + 2 * jx, h, w, _FINE_TAPS)                       # (band, 16)
        # plain fine rows are the stencil (symmetric: mirroring leaves it), the others the band's rows
        coef = self.interior.ravel()[p].astype(np.float64) @ (self.stencil.ravel() @ _TAPS)
        row_of = np.full(h * w, -1, np.int32)
        row_of[self.band_idx] = np.arange(len(self.band_idx), dtype=np.int32)
        rows = row_of[p]
        tap, which = np.nonzero(rows.T >= 0)           # the band's fine rows below each coarse row, tap by tap
        part = self.band_coef[rows[which, tap]]
        py, px = 2 * jy[:, None] + _FINE_TAPS[:, 0], 2 * jx[:, None] + _FINE_TAPS[:, 1]
        flips = ((py < 0) | (py >= h)) + 2 * ((px < 0) | (px >= w))      # mirrored in y (1), x (2) or both (3)
        if flips.any():
            flip = flips[which, tap]
            f = np.flatnonzero(flip)
            part[f] = np.take_along_axis(part[f], _MIRRORS[flip[f]], 1)
        ends = np.cumsum(np.bincount(tap, minlength=16))
        for k in range(16):         # a coarse row meets each tap once
            lo, hi = ends[k - 1] if k else 0, ends[k]
            coef[which[lo:hi]] += part[lo:hi] @ _TAPS[k]
        cols = _neighbours(band, hc, wc)
        coef *= cmask.ravel()[cols]
        stencil = (self.stencil.ravel() @ _TAPS.sum(0)).reshape(5, 5)
        return _Level(cmask, stencil, interior, band, coef, cols)

    def matrix(self) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
        """(this level's operator as a sparse matrix over its unknowns, their flat indices)."""
        h, w = self.mask.shape
        idx = np.flatnonzero(self.mask)
        number = np.full(h * w, -1, np.int64)
        number[idx] = np.arange(len(idx))
        coef = np.where(self.interior.ravel()[idx, None], self.stencil.ravel(), 0.0)
        coef[number[self.band_idx]] = self.band_coef
        cols = number[_neighbours(idx, h, w)]
        keep = (cols >= 0) & (coef != 0)
        rows = np.broadcast_to(np.arange(len(idx))[:, None], cols.shape)
        a = scipy.sparse.csr_matrix((coef[keep], (rows[keep], cols[keep])), shape=(len(idx), len(idx)))
        return a, idx


def _fine_level(mask: np.ndarray) -> _Level:
    h, w = mask.shape
    interior = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8), borderType=cv2.BORDER_CONSTANT,
                         borderValue=0) > 0
    band = np.flatnonzero(mask & ~interior)
    cols = _neighbours(band, h, w)
    coef = mask.ravel()[cols] * _K.ravel()
    return _Level(mask, _K, interior, band, coef, cols, exact=True)


class _Multigrid:
    """The preconditioner: a multigrid cycle over the Galerkin levels of a window's hole mask, in float32."""

    def __init__(self, mask: np.ndarray):
        self.levels = [_fine_level(mask)]
        while True:
            lv = self.levels[-1]
            lv.x, lv.y, lv.r, lv.d, lv.t = (np.empty(lv.mask.shape, np.float32) for _ in range(5))
            if not lv.exact:
                lv.lmax = _POWER_SAFETY * _largest_eigenvalue(lv)
            h, w = lv.mask.shape
            if lv.mask.sum() <= _COARSEST or h % 2 or w % 2 or min(h, w) < 8:
                break
            self.levels.append(lv.coarsen())
        a, self.coarse_idx = self.levels[-1].matrix()
        if len(self.coarse_idx) <= 4 * _COARSEST:
            a = a.toarray()
            # a small ridge: thin parts of a hole can make coarse interpolants linearly dependent (A singular)
            a[np.diag_indices_from(a)] += 1e-6 * np.abs(np.diag(a)).max()
            inverse = scipy.linalg.cho_solve(scipy.linalg.cho_factor(a), np.eye(len(a))).astype(np.float32)
            self.coarse_solve = lambda b: inverse @ b
        else:       # a window that does not halve (an image side that does not): an exact sparse solve
            solve = scipy.sparse.linalg.factorized(a.tocsc())
            self.coarse_solve = lambda b: solve(b.astype(np.float64))
        for lv in self.levels:      # Chebyshev coefficients
            lv.steps = _chebyshev_steps(lv.lmax, _DEGREES[0] if lv.exact else _DEGREES[1])

    def __call__(self, b: np.ndarray, level: int = 0) -> np.ndarray:
        """An approximate solution of A x = b (float32, zero outside the level's mask)."""
        lv = self.levels[level]
        if level == len(self.levels) - 1:
            x = np.zeros_like(b)
            x.ravel()[self.coarse_idx] = self.coarse_solve(b.ravel()[self.coarse_idx])
            return x
        below = self.levels[level + 1]
        x = _smooth(lv, b, None)
        for _ in range(2 if level in _W_LEVELS else 1):
            cv2.subtract(b, lv.apply(x, lv.y), dst=lv.r)
            lv.r *= lv.fmask
            rc = _restrict(lv.r)
            rc *= below.fmask
            cv2.resize(self(rc, level + 1), (b.shape[1], b.shape[0]), dst=lv.y, interpolation=cv2.INTER_LINEAR)
            cv2.accumulateProduct(lv.y, lv.fmask, x)       # x += P e, cut to the mask
        return _smooth(lv, b, x)

    def start(self, b: np.ndarray, level: int = 0) -> np.ndarray:
        """A first approximation of A x = b by full multigrid (float32, a new array, zero outside the mask; b is
        zero there too): the level below's, interpolated, then one cycle on it (on the finest level, a smoothing)."""
        lv = self.levels[level]
        if level == len(self.levels) - 1:
            return self(b, level)
        rc = _restrict(b)
        rc *= self.levels[level + 1].fmask
        x = cv2.resize(self.start(rc, level + 1), (b.shape[1], b.shape[0]), interpolation=cv2.INTER_LINEAR)
        x *= lv.fmask
        r = cv2.subtract(b, lv.apply(x, lv.y))
        r *= lv.fmask
        x += self(r, level) if level else _smooth(lv, r, None)
        return x


def _largest_eigenvalue(lv: _Level) -> float:
    """Power iteration for the largest eigenvalue of D^-1 A (Gershgorin's bound is 2-5 times too large on the
    band rows, which would slow the smoothing down)."""
    v = lv.fmask * np.random.default_rng(0).random(lv.mask.shape, dtype=np.float32)
    lam = 0.0
    for _ in range(_POWER_STEPS):
        w = lv.apply(v, lv.y) * lv.dinv
        lam = float(np.linalg.norm(w) / np.linalg.norm(v))
        v = w
    return lam


def _restrict(r: np.ndarray) -> np.ndarray:
    """P^T r for cell-centred bilinear interpolation P (cv2.resize INTER_LINEAR at 2x): per axis, the weights
    (1, 3, 3, 1) / 4 at 2j - 1 .. 2j + 2, i.e. (1, 2, 1) / 2 at full size, then the sum of each pair (INTER_AREA)."""
    k = np.float32([0.5, 1, 0.5])
    return cv2.resize(cv2.sepFilter2D(r, -1, k, k, borderType=cv2.BORDER_REFLECT), (r.shape[1] // 2, r.shape[0] // 2),
                      interpolation=cv2.INTER_AREA)


def _chebyshev_steps(lmax: float, degree: int) -> list[tuple[float, float]]:
    """(c_old, c_new) per step, d <- c_old d + c_new D^-1 r, for eigenvalues of D^-1 A in [_LOW lmax, lmax]."""
    lo = _LOW * lmax
    theta, delta = (lmax + lo) / 2, (lmax - lo) / 2
    sigma = theta / delta
    rho = 1 / sigma
    steps = [(0.0, 1 / theta)]
    for _ in range(degree - 1):
        rho_next = 1 / (2 * sigma - rho)
        steps.append((rho_next * rho, 2 * rho_next / delta))
        rho = rho_next
    return steps


def _smooth(lv: _Level, b: np.ndarray, x: np.ndarray | None) -> np.ndarray:
    """Chebyshev smoothing of A x = b from x (None: zero, and x is the level's work array); returns x (updated in
    place). Each step: d <- c_old d + c_new D^-1 r, x += d, r -= A d."""
    d, t = lv.d, lv.t
    if x is None:
        r = b
    else:
        r = cv2.subtract(b, lv.apply(x, lv.y), dst=lv.r)
    for i, (c_old, c_new) in enumerate(lv.steps):
        if i:
            r = cv2.subtract(r, lv.apply(d, lv.y), dst=lv.r)
            cv2.multiply(r, lv.dinv, dst=t, scale=c_new)
            cv2.scaleAdd(d, c_old, t, dst=d)
        else:
            cv2.multiply(r, lv.dinv, dst=d, scale=c_new)
        if x is None:
            x = lv.x
            np.copyto(x, d)
        else:
            x += d
    return x


def _pyramid_fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """A smooth start: the hole filled from a Gaussian pyramid of the known pixels (their weighted means)."""
    w = (~hole).astype(np.float32)
    vs, ws = [image.astype(np.float32) * w], [w]
    while min(vs[-1].shape) > 2 and ws[-1].min() < 0.5:
        vs.append(cv2.pyrDown(vs[-1]))
        ws.append(cv2.pyrDown(ws[-1]))
    f = vs[-1] / np.maximum(ws[-1], 1e-6)
    for v, w in zip(vs[-2::-1], ws[-2::-1]):
        up = cv2.pyrUp(f, dstsize=(v.shape[1], v.shape[0]))
        f = np.where(w > 0.5, v / np.maximum(w, 1e-6), up)
    return f


def _solve(image: np.ndarray, hole: np.ndarray, unknown: np.ndarray, tol: float, max_iter: int = 100) -> np.ndarray:
    """The biharmonic values of `hole`'s pixels (float64) in the window `image` (float64, known around the hole;
    `unknown`: every hole pixel of the window, which the start does not read either): conjugate gradients, stopped
    when the multigrid's estimate of the error left (the preconditioned residual) is below tol everywhere; that last
    estimate is added as well."""
    fmask = hole.astype(np.float32)
    x = np.where(hole, _pyramid_fill(image, unknown), image)
    q, r32 = np.empty(hole.shape), np.empty(hole.shape, np.float32)

    def apply(v):        # A v on the hole's rows (other rows: never read, the residual is masked below)
        return cv2.filter2D(v, -1, _K, dst=q, borderType=cv2.BORDER_REFLECT)

    def masked(r):      # the residual on the hole's rows, in float32 (r32, which the dot products read too)
        return np.multiply(r, fmask, out=r32, casting="unsafe")

    def precondition(r):
        z = multigrid(masked(r))
        return z, max(float(z.max()), -float(z.min()))

    multigrid = _Multigrid(hole)
    x += multigrid.start(masked(-apply(x)))       # the pyramid fill corrected by full multigrid
    r = -apply(x)
    z, error = precondition(r)
    p = z.astype(np.float64)
    rz = float(np.vdot(r32, z))
    for _ in range(max_iter):
        if error < tol:
            x += z
            return x[hole]
        alpha = rz / float(np.vdot(p, apply(p)))
        cv2.scaleAdd(p, alpha, x, dst=x)
        cv2.scaleAdd(q, -alpha, r, dst=r)
        z, error = precondition(r)
        rz, rz_old = float(np.vdot(r32, z)), rz
        cv2.scaleAdd(p, rz / rz_old, z.astype(np.float64), dst=p)
    raise RuntimeError(f"biharmonic_fill: no convergence in {max_iter} iterations (estimated error {error:.3g})")


def _span(lo: int, hi: int, n: int, align: int, margin: int = 4) -> slice:
    """[lo, hi) grown by `margin` and to a multiple of `align` within 0..n (all of 0..n if it does not fit)."""
    lo, hi = max(0, lo - margin), min(n, hi + margin)
    size = -(-(hi - lo) // align) * align
    if size > n:
        return slice(0, n)
    lo = min(lo, n - size)
    return slice(lo, lo + size)


_BLAS_LOCK = threading.Lock()


@functools.cache
def _blas_controller():
    """threadpoolctl's view of the loaded BLAS libraries (read once: scanning them takes milliseconds)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def biharmonic_fill(gray: np.ndarray, mask: np.ndarray, tol: float = 0.5) -> np.ndarray:
    """The hole (`mask` True) of a uint8 gray HxW image filled by biharmonic inpainting at full resolution: the
    fill of scikit-image's `inpaint_biharmonic` (clipped to the known pixels' range, rounded) within one gray level,
    in a few tens of milliseconds. Pixels outside the hole are returned unchanged; the inputs are not modified.
    `tol`: the error left before rounding, in gray levels, at which the solver stops by its own estimate (the
    default left at most 0.53 as measured: the module's docstring)."""
    gray, mask = np.asarray(gray), np.asarray(mask)
    if gray.dtype != np.uint8 or gray.ndim != 2:
        raise ValueError(f"biharmonic_fill takes a uint8 gray HxW image, got {gray.dtype} {gray.shape}")
    if mask.shape != gray.shape:
        raise ValueError(f"biharmonic_fill: the mask {mask.shape} and the image {gray.shape} differ in size")
    if mask.dtype != bool:
        raise ValueError(f"biharmonic_fill: the mask must be a bool array, got {mask.dtype}")
    out = gray.copy()
    if not mask.any():
        return out
    if mask.all():
        raise ValueError("biharmonic_fill: the mask covers the whole image; no known pixel to fill from")
    hole8 = mask.astype(np.uint8)
    lo, hi, _, _ = cv2.minMaxLoc(gray, mask=1 - hole8)
    # hole pixels within a 4-neighbour distance of 2 share equations: a cross dilation joins them into one group
    grown = cv2.dilate(hole8, cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=4)
    h, w = gray.shape
    # BLAS on one thread (the module's docstring); the limit is process-wide, so fills in threads take turns
    with _BLAS_LOCK, _blas_controller().limit(limits=1, user_api="blas"):
        for label in range(1, count):
            x0, y0, bw, bh, area = stats[label]
            # align the window to 2^levels, levels enough to reach _COARSEST unknowns
            align = 1 << max(0, int(np.ceil(np.log(max(area, 1) / _COARSEST) / np.log(4))))
            win = _span(y0, y0 + bh, h, align), _span(x0, x0 + bw, w, align)
            hole = (labels[win] == label) & mask[win]
            values = _solve(gray[win].astype(np.float64), hole, mask[win], tol)
            out[win][hole] = np.clip(values, lo, hi).round().astype(np.uint8)
    return out
