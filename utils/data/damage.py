"""Synthetic damage faithful to the competition's test set, and free-form strokes beyond it.

Test holes are random polygons from the `polygenerator` package (random, star-shaped or convex,
3-20 points) scaled into a random bbox of at least 50 px, filled with one gray value 0-255.
Train holes in the provided data are ~140 px squares/circles filled near-black; a configurable
share of those can be mixed in. Strokes (scratches and brush marks: several free-form polylines per image, each
swept by a round brush 2-28 px wide, all white, all black or all one gray value) are another share, off by
default: the competition's damage is the polygons. Everything is configured through `DamageConfig` (as in LaMa).
"""
from __future__ import annotations

import contextlib
import random
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
import polygenerator
from PIL import Image, ImageDraw

POLYGON_FUNCS = {
    "random": polygenerator.random_polygon,
    "star": polygenerator.random_star_shaped_polygon,
    "convex": polygenerator.random_convex_polygon,
}


STROKE_FILLS = ("white", "black", "gray")


@dataclass
class DamageConfig:
    image_size: int = 512
    min_bbox: int = 50                 # each bbox side is at least this (test set: 50)
    max_bbox: int | None = None        # None: up to the image size, as the competition generator
    min_points: int = 3
    max_points: int = 20
    shapes: dict = field(default_factory=lambda: {"random": 1.0, "star": 1.0, "convex": 1.0})
    fill_range: tuple = (0, 255)       # inclusive range of the single fill value
    train_style_share: float = 0.0     # share of train-style squares/circles instead of polygons
    train_style_size: tuple = (110, 170)
    train_style_fill: tuple = (0, 8)
    stroke_share: float = 0.0          # share of free-form strokes instead of a polygon (0: the competition's damage)
    stroke_count: tuple = (1, 6)       # strokes per image (inclusive range)
    stroke_width: tuple = (2, 28)      # brush width of each stroke in px (inclusive range): thin scratch to thick mark
    stroke_vertices: tuple = (2, 6)    # points of each stroke's polyline (inclusive range)
    stroke_step: tuple = (24, 120)     # px from one point of a stroke to the next (inclusive range)
    stroke_turn: float = 75.0          # degrees a stroke turns at most at each point
    # the one fill of an image's strokes, by weight: white (255), black (0), or one gray value from fill_range
    stroke_fills: dict = field(default_factory=lambda: {"white": 1.0, "black": 1.0, "gray": 1.0})

    def to_dict(self) -> dict:
        return asdict(self)

    def __post_init__(self):
        shares = (self.train_style_share, self.stroke_share)
        if min(shares) < 0 or sum(shares) > 1:
            raise ValueError(f"DamageConfig: train_style_share ({self.train_style_share}) and stroke_share "
                             f"({self.stroke_share}) must be >= 0 and add up to at most 1")
        for name in ("stroke_count", "stroke_width", "stroke_vertices", "stroke_step"):
            lo, hi = getattr(self, name)
            least = 2 if name == "stroke_vertices" else 1
            if not least <= lo <= hi:
                raise ValueError(f"DamageConfig: {name} must be (low, high) with {least} <= low <= high, "
                                 f"got {getattr(self, name)}")
        if self.stroke_share > 0 and 2 * self.stroke_step[1] >= self.image_size:
            raise ValueError(f"DamageConfig: stroke_step {self.stroke_step} must stay under half the image size "
                             f"({self.image_size})")
        unknown = set(self.stroke_fills) - set(STROKE_FILLS)
        if unknown or not self.stroke_fills or min(self.stroke_fills.values()) < 0 \
                or sum(self.stroke_fills.values()) <= 0:
            raise ValueError(f"DamageConfig: stroke_fills must weigh some of {STROKE_FILLS} (weights >= 0, "
                             f"not all 0), got {self.stroke_fills}")


@dataclass
class Damage:
    mask: np.ndarray          # bool HxW, True inside the hole
    fill: int                 # the single gray value inside the hole
    kind: str                 # 'random' | 'star' | 'convex' | 'square' | 'circle' | 'strokes'
    bbox: tuple               # (x1, y1, x2, y2) of the sampled box (strokes: of the painted pixels, x2/y2 exclusive)
    strokes: list = field(default_factory=list)   # strokes only: [(points [k,2] int (x, y), width px)] each


@contextlib.contextmanager
def _seeded_python_random(seed: int):
    """polygenerator draws from the global `random` module: seed it, then restore its state."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


def sample_bbox(rng: np.random.Generator, cfg: DamageConfig) -> tuple:
    """A box as the competition generator draws it: corners uniform, sides >= min_bbox, area > (min_bbox//2)^2."""
    size = cfg.image_size
    max_side = cfg.max_bbox or size
    if not cfg.min_bbox <= max_side <= size:
        raise ValueError(f"DamageConfig: need min_bbox <= max_bbox <= image_size, got {cfg.min_bbox}, {max_side}, {size}")
    for _ in range(10_000):
        x1 = int(rng.integers(0, size - cfg.min_bbox + 1))
        y1 = int(rng.integers(0, size - cfg.min_bbox + 1))
        x2 = int(rng.integers(x1, min(size, x1 + max_side) + 1))
        y2 = int(rng.integers(y1, min(size, y1 + max_side) + 1))
        w, h = x2 - x1, y2 - y1
        if w >= cfg.min_bbox and h >= cfg.min_bbox and w * h > (cfg.min_bbox // 2) ** 2:
            return x1, y1, x2, y2
    raise RuntimeError("could not sample a damage bbox; check DamageConfig")


def _rasterize(shape: str, points, size: int) -> np.ndarray:
    """A bool mask of one filled shape: 'polygon' (a list of (x, y) vertices), or 'square' / 'circle'
    (the inclusive box [x0, y0, x1, y1])."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    if shape == "polygon":
        draw.polygon(points, fill=1)
    elif shape == "square":
        draw.rectangle(points, fill=1)
    elif shape == "circle":
        draw.ellipse(points, fill=1)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return np.asarray(canvas).astype(bool)


def sample_polygon_damage(rng: np.random.Generator, cfg: DamageConfig) -> Damage:
    names = list(cfg.shapes)
    weights = np.asarray([cfg.shapes[n] for n in names], dtype=float)
    kind = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    for _ in range(100):
        x1, y1, x2, y2 = sample_bbox(rng, cfg)
        n_points = int(rng.integers(cfg.min_points, cfg.max_points + 1))
        with _seeded_python_random(int(rng.integers(2**62))):
            poly = POLYGON_FUNCS[kind](num_points=n_points)
        pts = [(x * (x2 - x1) + x1, y * (y2 - y1) + y1) for x, y in poly]
        mask = _rasterize("polygon", pts, cfg.image_size)
        if mask.sum() > min_polygon_area(cfg):  # thin slivers are redrawn: polygon holes hold > (min_bbox//2)^2 px
            fill = int(rng.integers(cfg.fill_range[0], cfg.fill_range[1] + 1))
            return Damage(mask, fill, kind, (x1, y1, x2, y2))
    raise RuntimeError(f"polygon damage came out smaller than {min_polygon_area(cfg)} px 100 times; check DamageConfig")


def sample_train_style_damage(rng: np.random.Generator, cfg: DamageConfig) -> Damage:
    """A near-black square or circle of ~140 px, like the provided train inputs."""
    side = int(rng.integers(cfg.train_style_size[0], cfg.train_style_size[1] + 1))
    x1 = int(rng.integers(0, cfg.image_size - side + 1))
    y1 = int(rng.integers(0, cfg.image_size - side + 1))
    box = (x1, y1, x1 + side, y1 + side)
    kind = "circle" if rng.random() < 0.5 else "square"
    mask = _rasterize(kind, [box[0], box[1], box[2] - 1, box[3] - 1], cfg.image_size)
    fill = int(rng.integers(cfg.train_style_fill[0], cfg.train_style_fill[1] + 1))
    return Damage(mask, fill, kind, box)


def draw_stroke(points, width: int, size: int) -> np.ndarray:
    """A bool mask of one stroke: the 8-connected 1-px polyline through `points` ((x, y) pairs) swept by a round
    brush `width` px across (a straight stroke is exactly `width` px wide)."""
    canvas = np.zeros((size, size), np.uint8)
    cv2.polylines(canvas, [np.asarray(points, np.int32).reshape(-1, 1, 2)], False, 1, thickness=1,
                  lineType=cv2.LINE_8)
    if width > 1:
        canvas = cv2.dilate(canvas, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (width, width)))
    return canvas.astype(bool)


def _stroke_points(rng: np.random.Generator, cfg: DamageConfig) -> np.ndarray:
    """A free-form polyline: a random start, then steps of stroke_step px, turning at most stroke_turn degrees;
    a step that would leave the image is mirrored off the edge it would cross (so every step lies inside)."""
    size = cfg.image_size
    n = int(rng.integers(cfg.stroke_vertices[0], cfg.stroke_vertices[1] + 1))
    pts = [rng.uniform(0, size - 1, 2)]
    angle = rng.uniform(0, 2 * np.pi)
    for _ in range(n - 1):
        angle += np.deg2rad(rng.uniform(-cfg.stroke_turn, cfg.stroke_turn))
        length = int(rng.integers(cfg.stroke_step[0], cfg.stroke_step[1] + 1))
        step = length * np.array([np.cos(angle), np.sin(angle)])
        out = (pts[-1] + step < 0) | (pts[-1] + step > size - 1)
        step[out] = -step[out]
        angle = float(np.arctan2(step[1], step[0]))
        pts.append(np.clip(pts[-1] + step, 0, size - 1))
    return np.rint(np.asarray(pts)).astype(np.int32)


def sample_stroke_damage(rng: np.random.Generator, cfg: DamageConfig) -> Damage:
    """Several free-form strokes (scratches to thick brush marks) with one fill: white, black or one gray value."""
    count = int(rng.integers(cfg.stroke_count[0], cfg.stroke_count[1] + 1))
    strokes = []
    mask = np.zeros((cfg.image_size, cfg.image_size), bool)
    for _ in range(count):
        pts = _stroke_points(rng, cfg)
        width = int(rng.integers(cfg.stroke_width[0], cfg.stroke_width[1] + 1))
        mask |= draw_stroke(pts, width, cfg.image_size)
        strokes.append((pts, width))
    names = list(cfg.stroke_fills)
    weights = np.asarray([cfg.stroke_fills[n] for n in names], dtype=float)
    how = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    fill = {"white": 255, "black": 0}.get(how)
    if fill is None:
        fill = int(rng.integers(cfg.fill_range[0], cfg.fill_range[1] + 1))
    ys, xs = np.nonzero(mask)
    return Damage(mask, fill, "strokes", (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1), strokes)


def min_polygon_area(cfg: DamageConfig) -> int:
    """Polygon holes hold more than (min_bbox // 2)^2 pixels."""
    return (cfg.min_bbox // 2) ** 2


def expected_area(kind: str, cfg: DamageConfig | None = None) -> tuple[float, float]:
    """The hole area (pixels) that the generator promises for one damage kind: (lowest, highest).
    square: side^2; circle: about pi/4 side^2 (PIL's rasterisation, within 4%); polygons: above
    (min_bbox // 2)^2 and at most their bbox; strokes: at least one straight step of the thinnest brush (half of
    its width x step, which a diagonal 1-px line still gives), at most the image."""
    cfg = cfg or DamageConfig()
    if kind == "strokes":
        return cfg.stroke_width[0] * cfg.stroke_step[0] / 2, float(cfg.image_size ** 2)
    lo, hi = cfg.train_style_size
    if kind == "square":
        return float(lo * lo), float(hi * hi)
    if kind == "circle":
        return 0.96 * np.pi / 4 * lo * lo, 1.04 * np.pi / 4 * hi * hi
    if kind in POLYGON_FUNCS:
        side = cfg.max_bbox or cfg.image_size
        return float(min_polygon_area(cfg) + 1), float(side * side)
    raise ValueError(f"unknown damage kind {kind!r}; known: square, circle, strokes, {', '.join(POLYGON_FUNCS)}")


def check_damage_areas(table, cfg: DamageConfig | None = None, tolerance: float = 0.0):
    """Expected vs found hole areas per damage kind, so that a broken generator cannot hide in a plot.

    `table`: a DataFrame with columns `kind` and `area` (and optionally `source`). A kind passes when no area
    lies outside its promised range; `tolerance` widens the lower bound (e.g. 0.5 for holes recovered from
    provided pairs, where hole pixels that equal the fill value are lost). Returns one row per (source, kind)
    with the expected and found ranges, the count outside, and `ok`."""
    import pandas as pd

    cfg = cfg or DamageConfig()
    rows = []
    keys = ["source", "kind"] if "source" in table else ["kind"]
    for key, d in table.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        kind = key[-1]
        lo, hi = expected_area(kind, cfg)
        outside = int(((d.area < lo * (1 - tolerance)) | (d.area > hi)).sum())
        rows.append({**dict(zip(keys, key)), "n": len(d), "expected min": round(lo), "expected max": round(hi),
                     "found min": int(d.area.min()), "found median": int(d.area.median()),
                     "found max": int(d.area.max()), "outside": outside, "ok": outside == 0})
    return pd.DataFrame(rows)


def sample_damage(rng: np.random.Generator, cfg: DamageConfig | None = None) -> Damage:
    cfg = cfg or DamageConfig()
    if cfg.train_style_share > 0 and rng.random() < cfg.train_style_share:
        return sample_train_style_damage(rng, cfg)
    if cfg.stroke_share > 0 and rng.random() < cfg.stroke_share / (1.0 - cfg.train_style_share):
        return sample_stroke_damage(rng, cfg)
    return sample_polygon_damage(rng, cfg)


def apply_damage(gray: np.ndarray, damage: Damage) -> np.ndarray:
    """The damaged input: `gray` outside the hole, the single fill value inside."""
    if gray.shape != damage.mask.shape:
        raise ValueError(f"image {gray.shape} and mask {damage.mask.shape} differ in size")
    out = gray.copy()
    out[damage.mask] = damage.fill
    return out


__all__ = ["Damage", "DamageConfig", "apply_damage", "sample_damage"]
