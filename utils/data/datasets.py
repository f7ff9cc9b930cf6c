"""The competition data layout, the training datasets, and a training run's data set-up (`prepare_run`,
`train_val_datasets`).

Layout (paths in the CSVs are relative to the data dir, like `./train_input/TRAIN_00000.png`):
  train.csv (input_image_path, gt_image_path), test.csv (input_image_path),
  train_input/ (L), train_gt/ (RGB), test_input/ (L); the sample builder adds test_gt/ and
  test_mask/ so that a local run can be scored.
"""
from __future__ import annotations

import os
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ..inference.prefills import telea
from .damage import DamageConfig, apply_damage, sample_damage
from ..core.images import IMAGE_EXTENSIONS, IMAGE_SIZE, DataError, gray_of, read_image
from ..core.paths import project_dir
from ..core.runtime import pick_device
from ..core.train_config import TRAIN_SOURCES, StageConfig

DATA_DIR_ENV = "IMAGE_RESTORE_DATA"
TRAIN_COLUMNS = ("input_image_path", "gt_image_path")
TEST_COLUMNS = ("input_image_path",)


def resolve_data_dir(path=None) -> Path:
    """The data dir: the argument (relative to the working directory, as a command-line path is), else
    $IMAGE_RESTORE_DATA, else `data/` in the repository (`utils.project_dir`)."""
    if path:
        return Path(path).expanduser().resolve()
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser().resolve()
    return project_dir("data")


def read_csv_table(csv: Path) -> pd.DataFrame:
    """A CSV as strings with its header and cells stripped of surrounding spaces; UTF-8 (with or without a
    BOM) or UTF-16 with a BOM (what spreadsheet programs save as "Unicode text"). Errors name the file."""
    import io

    raw = csv.read_bytes()
    if not raw.strip():
        raise DataError(f"{csv}: empty file (expected a header line such as {','.join(TRAIN_COLUMNS)})")
    try:
        text = raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{csv}: not UTF-8 or UTF-16 text ({e}); save it as UTF-8 CSV") from e
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataError(f"{csv}: not a readable CSV ({e})") from e
    df.columns = [str(c).strip() for c in df.columns]
    return df.apply(lambda col: col.str.strip())


# the mode each column's images must decode to (`read_image`, as the data sets and notebook 05 read them)
COLUMN_MODES = {"train.csv": {"input_image_path": "L", "gt_image_path": "RGB"}, "test.csv": {"input_image_path": "L"}}


def _check_duplicates(csv: Path, raw: pd.DataFrame, keys: dict) -> None:
    """A DataError naming the csv, the first value that `keys` ({column: one key per row}) lists twice or more in a
    column, as the csv writes it, and its lines."""
    for col, col_keys in keys.items():
        lines: dict = {}
        for i, k in enumerate(col_keys):
            lines.setdefault(k, []).append(i)
        dups = [rows for rows in lines.values() if len(rows) > 1]
        if dups:
            rows = dups[0]
            values = sorted({raw[col].iloc[r] for r in rows})
            more = f" (and {len(dups) - 1} more duplicated)" if len(dups) > 1 else ""
            raise DataError(f"{csv}: {col} {' = '.join(values)} is listed {len(rows)} times, on lines "
                            f"{', '.join(str(r + 2) for r in rows[:10])}{more}; each image must appear once")


def _header_problem(path: Path, mode: str, size: int) -> str | None:
    """The problem with an image's header (its size and the mode it decodes to), read without decoding pixels."""
    from PIL import Image

    from ..core.guards import decoded_mode

    try:
        with Image.open(path) as im:
            w, h, m = im.width, im.height, decoded_mode(im.mode)
    except Image.DecompressionBombError:
        return "image too large to decode safely"
    except (OSError, ValueError, SyntaxError) as e:
        return f"unreadable image ({e})"
    if (w, h) != (size, size):
        return f"size {w}x{h}, expected {size}x{size}"
    if m != mode:
        return f"mode {m}, expected {mode}"
    return None


def check_headers(paths, mode: str, size: int = IMAGE_SIZE, workers: int = 8) -> dict:
    """{path: problem} for every image whose header says the wrong size or mode (or that cannot be opened), read
    with PIL's `Image.open` without decoding pixels (fast: a thousand files take well under a second), in a thread
    pool of `workers`."""
    from concurrent.futures import ThreadPoolExecutor

    paths = list(paths)
    if workers > 1 and len(paths) > 256:
        with ThreadPoolExecutor(workers) as pool:
            found = list(pool.map(lambda p: _header_problem(p, mode, size), paths, chunksize=64))
    else:
        found = [_header_problem(p, mode, size) for p in paths]
    return {p: why for p, why in zip(paths, found) if why is not None}


def _read_table(data_dir: Path, csv_name: str, columns, on_error: str, check: bool = True) -> pd.DataFrame:
    if on_error not in ("raise", "skip"):
        raise ValueError("on_error must be 'raise' or 'skip'")
    csv = data_dir / csv_name
    if not csv.is_file():
        raise DataError(f"{csv}: file not found (is the data dir right? set {DATA_DIR_ENV} or pass data_dir)")
    df = read_csv_table(csv)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{csv}: missing column(s) {missing}; found {list(df.columns)}")
    df = df[list(columns)].copy()
    if df.empty:
        raise DataError(f"{csv}: has a header but no rows (expected one row per image)")
    blank = [i + 2 for i in range(len(df)) if any(not str(df[c].iloc[i]).strip()
                                                    for c in columns)]
    if blank:
        raise DataError(f"{csv}: empty cell(s) on line(s) {blank[:5]}")
    raw = df.copy()
    for col in columns:
        df[col] = [(data_dir / str(p)).resolve() for p in df[col]]
    _check_duplicates(csv, raw, {c: list(df[c]) for c in columns})
    if csv_name == "test.csv":      # the submission zip is flat: one PNG per test input's file name
        _check_duplicates(csv, raw, {c: [p.name for p in df[c]] for c in columns})
    problems, bad = [], set()
    for col in columns:
        for p in df[col]:
            if not p.is_file():
                problems.append(f"{p}: file not found (listed in {csv.name})")
                bad.add(p)
    if check:       # every image's size and mode from its header, before any training or restoring starts
        for col in columns:
            mode = COLUMN_MODES.get(csv_name, {}).get(col)
            if mode is None:
                continue
            for p, why in check_headers([p for p in df[col] if p not in bad], mode).items():
                problems.append(f"{p}: {why} (listed in {csv.name} as {col})")
                bad.add(p)
    if problems and on_error == "raise":
        raise DataError(problems[0] + (f" (and {len(problems) - 1} more bad file(s))" if len(problems) > 1 else ""))
    if problems:
        keep = ~df.apply(lambda r: any(r[c] in bad for c in columns), axis=1)
        df = df[keep].reset_index(drop=True)
    df.attrs["problems"] = problems
    return df


def load_train_table(data_dir=None, on_error: str = "raise", check: bool = True) -> pd.DataFrame:
    """train.csv with absolute paths; a missing column, a path listed twice (input or ground truth; the error names
    the csv, the path and its lines), a missing file or, with `check`, an image whose header says the wrong size or
    mode (train_input L, train_gt RGB, 512x512; `check_headers`, no pixels decoded) is a DataError naming it
    (on_error='skip' drops the rows with a bad file instead and lists them in `df.attrs['problems']`)."""
    return _read_table(resolve_data_dir(data_dir), "train.csv", TRAIN_COLUMNS, on_error, check)


def load_test_table(data_dir=None, on_error: str = "raise", check: bool = True) -> pd.DataFrame:
    """test.csv with absolute paths, checked as `load_train_table` (test_input L, 512x512); two rows with one file
    name are duplicates too (the submission holds one PNG per name)."""
    return _read_table(resolve_data_dir(data_dir), "test.csv", TEST_COLUMNS, on_error, check)


def heldout_crops(data_dir, folders=("test_input", "test_gt"), limit: int | None = None) -> tuple[list, dict]:
    """(names, {name: source photo}) of a held-out folder in the competition layout with ground truth
    (tools/build_heldout.py): its test.csv's file names (the first `limit`), each crop's photo from manifest.csv
    (name, source), or the crop itself without one. A missing folder of `folders` or fewer than 2 images:
    DataError naming it."""
    data = Path(data_dir)
    for sub in folders:
        if not (data / sub).is_dir():
            raise DataError(f"{data / sub}: not found (a held-out folder in the competition layout with ground "
                            "truth: tools/build_heldout.py)")
    names = [Path(p).name for p in load_test_table(data).input_image_path][:limit]
    if len(names) < 2:
        raise DataError(f"{data}: need at least 2 test images")
    photos = {n: n for n in names}
    if (data / "manifest.csv").exists():
        man = pd.read_csv(data / "manifest.csv")
        if {"name", "source"} <= set(man.columns):
            photos.update({k: str(v) for k, v in zip(man.name, man.source) if k in photos})
    return names, photos


def check_images(paths, mode: str, size: int = IMAGE_SIZE, on_error: str = "raise") -> list[str]:
    """Decode every file and check its mode and size; return the problems (or raise on the first)."""
    problems = []
    for p in paths:
        try:
            read_image(p, mode, size)
        except DataError as e:
            if on_error == "raise":
                raise
            problems.append(str(e))
    return problems


def split_indices(n: int, val_fraction: float = 0.1, seed: int = 0, groups=None) -> tuple[np.ndarray, np.ndarray]:
    """A reproducible train/validation split of n items; with `groups` (a label per item, e.g. each crop's scene),
    whole groups go to one side, drawn until about val_fraction of the items are in validation."""
    rng = np.random.default_rng(seed)
    if groups is None:
        order = rng.permutation(n)
        n_val = max(1, int(round(n * val_fraction))) if n > 1 else 0
        return np.sort(order[n_val:]), np.sort(order[:n_val])
    groups = np.asarray(groups)
    names = np.unique(groups)
    val, target = [], max(1, int(round(n * val_fraction))) if n > 1 else 0
    for g in names[rng.permutation(len(names))]:
        if sum(len(v) for v in val) >= target or len(val) == len(names) - 1:
            break
        val.append(np.flatnonzero(groups == g))
    va = np.sort(np.concatenate(val)) if val else np.array([], dtype=int)
    return np.setdiff1d(np.arange(n), va), va


def crop_groups(data_dir, table: pd.DataFrame):
    """The scene of each row of train.csv when data_dir/manifest.csv records scenes (tools/build_corpus.py does),
    else None: the validation split then keeps scenes whole (no scene on both sides)."""
    manifest = Path(data_dir) / "manifest.csv"
    if not manifest.is_file():
        return None
    man = pd.read_csv(manifest)
    if "scene" not in man.columns or "name" not in man.columns:
        return None
    scene = dict(zip(man["name"], man["scene"].astype(str)))
    names = [Path(p).name for p in table["gt_image_path"]]
    if not all(n in scene for n in names):
        return None
    return [scene[n] for n in names]


def geometric_augmentation(size: int = IMAGE_SIZE) -> A.Compose:
    """Flips and crops only: colour jitter on targets ruins the hue score."""
    return A.Compose([
        A.HorizontalFlip(p=0.5),
        A.RandomResizedCrop(size=(size, size), scale=(0.35, 1.0), ratio=(0.8, 1.25), p=0.7),
    ])


def to_tensor_sample(gray: np.ndarray, mask: np.ndarray, rgb: np.ndarray, size: int) -> dict:
    """Resize to the working size and convert: gray [1,H,W], mask [1,H,W] (area fraction), rgb [3,H,W], all 0-1."""
    if size != gray.shape[0]:
        gray = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA)
        rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
        maskf = cv2.resize(mask.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    else:
        maskf = mask.astype(np.float32)
    return {
        "gray": torch.from_numpy(gray.astype(np.float32) / 255.0)[None],
        "mask": torch.from_numpy(maskf)[None],
        "rgb": torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous(),
    }


class SyntheticDamageDataset(Dataset):
    """Color photos -> (damaged gray, mask, color target) with polygon damage synthesized on the fly.

    Seeded: item i of epoch e is always the same (seed, e, i); with `fixed=True` the epoch is
    ignored and augmentation is off, which makes a fixed validation set.
    """

    def __init__(self, gt_paths, damage: DamageConfig | None = None, size: int = IMAGE_SIZE,
                 augment: bool = True, fixed: bool = False, seed: int = 0, on_error: str = "raise",
                 repeats: int = 1):
        self.paths = [Path(p) for p in gt_paths]
        if not self.paths:
            raise DataError("SyntheticDamageDataset: no ground-truth images given")
        self.damage = damage or DamageConfig()
        self.size, self.fixed, self.seed, self.on_error = size, fixed, seed, on_error
        self.augment = geometric_augmentation(self.damage.image_size) if augment and not fixed else None
        self.epoch = 0
        self.repeats = max(1, int(repeats))     # each photo appears `repeats` times an epoch, damaged anew
        self.skipped: list[str] = []

    def __len__(self):
        return len(self.paths) * self.repeats

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def _rng(self, idx: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, 0 if self.fixed else self.epoch, idx])

    def _read_gt(self, idx: int, rng: np.random.Generator) -> np.ndarray:
        return read_image(self.paths[idx], "RGB", self.damage.image_size)

    def sample(self, idx: int) -> dict:
        """One example as uint8 arrays at full size: gray (damaged), mask, rgb, clean_gray, fill."""
        rng = self._rng(idx)
        idx = idx % len(self.paths)
        for attempt in range(len(self.paths)):
            j = (idx + attempt) % len(self.paths)
            try:
                rgb = self._read_gt(j, rng)
                break
            except DataError as e:
                if self.on_error == "raise":
                    raise
                if str(e) not in self.skipped:
                    self.skipped.append(str(e))
        else:
            raise DataError("SyntheticDamageDataset: every image failed to load")
        if self.augment is not None:
            self.augment.set_random_seed(int(rng.integers(2**31)))
            rgb = self.augment(image=rgb)["image"]
        clean = gray_of(rgb)
        dmg = sample_damage(rng, self.damage)
        return {"gray": apply_damage(clean, dmg), "mask": dmg.mask, "rgb": rgb, "clean_gray": clean,
                "fill": dmg.fill, "kind": dmg.kind}

    def __getitem__(self, idx: int) -> dict:
        s = self.sample(idx)
        return to_tensor_sample(s["gray"], s["mask"], s["rgb"], self.size)


class PhotoCropDataset(SyntheticDamageDataset):
    """Full-resolution colour photos -> a crop drawn afresh every epoch, damaged on the fly.

    Item i of epoch e takes photo i % n (each photo `repeats` times an epoch) and, seeded by (seed, e, i), resizes
    it so that its short side is 512*s (s uniform in `scale`, capped at the photo's own resolution so that crops
    are never upsampled beyond it), takes a 512x512 square at a random position and flips it left-right with
    probability 1/2; then polygon damage as in SyntheticDamageDataset. A photo is decoded once per process and kept,
    downscaled to the largest size a crop can use (short side 512*scale[1])."""

    def __init__(self, photo_paths, damage: DamageConfig | None = None, size: int = IMAGE_SIZE, seed: int = 0,
                 scale=StageConfig.crop_scale, repeats: int = 1, on_error: str = "raise"):
        super().__init__(photo_paths, damage, size, augment=False, seed=seed, on_error=on_error, repeats=repeats)
        lo, hi = float(scale[0]), float(scale[1])
        if not 0 < lo <= hi:
            raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {scale}")
        self.scale = (lo, hi)
        self._photos: dict[int, np.ndarray] = {}

    def photo(self, idx: int) -> np.ndarray:
        """Photo idx as RGB uint8, short side at most 512*scale[1] (decoded once per process)."""
        if idx not in self._photos:
            path, limit = self.paths[idx], self.damage.image_size * self.scale[1]
            try:
                from PIL import Image

                with Image.open(path) as im:
                    if im.format == "JPEG":         # decode at a reduced scale where the crop cannot use more
                        im.draft("RGB", (round(im.width * limit / min(im.size)), round(im.height * limit / min(im.size))))
                    rgb = np.asarray(im.convert("RGB"))
            except (OSError, ValueError, SyntaxError) as e:
                raise DataError(f"{path}: not a readable image ({e})") from e
            short = min(rgb.shape[:2])
            if short > limit:
                f = limit / short
                rgb = cv2.resize(rgb, (round(rgb.shape[1] * f), round(rgb.shape[0] * f)), interpolation=cv2.INTER_AREA)
            self._photos[idx] = rgb
        return self._photos[idx]

    def _read_gt(self, idx: int, rng: np.random.Generator) -> np.ndarray:
        from .sample_data import random_crop

        rgb = self.photo(idx)
        size = self.damage.image_size
        native = max(self.scale[0], min(rgb.shape[:2]) / size)
        return random_crop(rgb, rng, size, (self.scale[0], min(self.scale[1], native)))[0]


class ProvidedPairsDataset(Dataset):
    """The competition's own (train_input, train_gt) pairs; the mask is recovered exactly as
    input != gray(gt) (the hole: every pixel the damage changed).

    Files are read one item at a time (never the whole set). With `augment=True` an item is flipped
    left-right with probability 1/2, seeded by (seed, epoch, index) like SyntheticDamageDataset; a flip keeps
    the pair exact (no resampling), so the recovered mask stays exact."""

    def __init__(self, table: pd.DataFrame, size: int = IMAGE_SIZE, augment: bool = False, seed: int = 0):
        self.table = table.reset_index(drop=True)
        if not len(self.table):
            raise DataError("ProvidedPairsDataset: no (train_input, train_gt) pairs given")
        self.size, self.augment, self.seed = size, augment, seed
        self.epoch = 0

    def __len__(self):
        return len(self.table)

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def sample(self, idx: int) -> dict:
        """One pair as uint8 arrays at full size: gray (the provided input), mask, rgb, clean_gray, fill, kind."""
        row = self.table.iloc[idx]
        gray = read_image(row["input_image_path"], "L", IMAGE_SIZE)
        rgb = read_image(row["gt_image_path"], "RGB", IMAGE_SIZE)
        if self.augment and np.random.default_rng([self.seed, self.epoch, idx, 1]).random() < 0.5:
            gray, rgb = np.ascontiguousarray(gray[:, ::-1]), np.ascontiguousarray(rgb[:, ::-1])
        clean = gray_of(rgb)
        mask = gray != clean
        fill = int(np.bincount(gray[mask]).argmax()) if mask.any() else -1
        return {"gray": gray, "mask": mask, "rgb": rgb, "clean_gray": clean, "fill": fill, "kind": "provided"}

    def __getitem__(self, idx: int) -> dict:
        s = self.sample(idx)
        return to_tensor_sample(s["gray"], s["mask"], s["rgb"], self.size)


class JoinedDataset(Dataset):
    """Several training sets one after another (e.g. synthetic damage and the provided pairs), keeping the
    `sample` / `set_epoch` / `epoch` interface that the training notebooks and InpaintDataset use."""

    def __init__(self, *parts):
        if not parts:
            raise ValueError("JoinedDataset: no datasets given")
        self.parts = parts
        self.ends = np.cumsum([len(p) for p in parts])
        self.epoch = 0

    def __len__(self):
        return int(self.ends[-1])

    def set_epoch(self, epoch: int):
        self.epoch = epoch
        for p in self.parts:
            p.set_epoch(epoch)

    def _locate(self, idx: int):
        if not 0 <= idx < len(self):
            raise IndexError(idx)
        j = int(np.searchsorted(self.ends, idx, side="right"))
        return self.parts[j], idx - (int(self.ends[j - 1]) if j else 0)

    def sample(self, idx: int) -> dict:
        part, i = self._locate(idx)
        return part.sample(i)

    def __getitem__(self, idx: int) -> dict:
        part, i = self._locate(idx)
        return part[i]


class InpaintDataset(Dataset):
    """The inpainter's training items, on luminance, from any damaged-photo dataset (`base`, whose `sample` gives the
    clean gray and the hole at full size): a `size` x `size` window of the full-resolution image around the hole
    (its centre jittered; holes larger than the window are cut by it), the input the window's gray with its hole
    pre-filled by `prefill` (utils.prefill: 'biharmonic' or 'telea', as the pipeline then does), the target the true
    gray. Colour is not needed, so gray photos train it too. Items: image [1,s,s] (pre-filled), mask [1,s,s], target
    [1,s,s], all 0-1."""

    def __init__(self, base, size: int, prefill: str = "biharmonic"):
        from ..core.configs import PREFILLS

        if prefill not in PREFILLS:
            raise ValueError(f"pre-fill must be one of {PREFILLS}, got {prefill!r}")
        self.base, self.size, self.prefill = base, size, prefill

    def __len__(self):
        return len(self.base)

    def set_epoch(self, e):
        self.base.set_epoch(e)

    def window(self, s: dict, idx: int) -> tuple[np.ndarray, np.ndarray]:
        gray, mask = s["clean_gray"], s["mask"]
        h, w = gray.shape
        k = self.size
        if k >= min(h, w):
            return gray, mask
        rng = np.random.default_rng([getattr(self.base, "seed", 0), getattr(self.base, "epoch", 0), idx, 31])
        ys, xs = np.nonzero(mask)
        cy, cx = (int(ys.mean()), int(xs.mean())) if len(ys) else (h // 2, w // 2)
        cy += int(rng.integers(-k // 4, k // 4 + 1))
        cx += int(rng.integers(-k // 4, k // 4 + 1))
        y0, x0 = int(np.clip(cy - k // 2, 0, h - k)), int(np.clip(cx - k // 2, 0, w - k))
        return gray[y0:y0 + k, x0:x0 + k], mask[y0:y0 + k, x0:x0 + k]

    def __getitem__(self, idx):
        from ..inference.prefills import prefill

        gray, mask = self.window(self.base.sample(idx), idx)
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None]  # noqa: E731
        return {"image": t(prefill(gray, mask, self.prefill) / 255.0), "mask": t(mask), "target": t(gray / 255.0)}


def prepare_run(data_dir=None, device: str = "auto", seed: int = 0, val_fraction: float = 0.1, max_train: int | None = None,
          max_val: int | None = None) -> dict:
    """Resolve the data dir (`resolve_data_dir`; the sample dataset is built when the default data/ holds none,
    `ensure_dataset`; any other folder without a dataset is a DataError), pick the device, split the
    ground-truth photos into train and validation. Returns a dict of what the notebook needs (`train_table`:
    the train split's rows of train.csv, for training on the provided pairs)."""
    from .sample_data import ensure_dataset

    data_dir = ensure_dataset(resolve_data_dir(data_dir))
    table = load_train_table(data_dir)
    tr, va = split_indices(len(table), val_fraction, seed, crop_groups(data_dir, table))
    gts = list(table["gt_image_path"])
    train_paths = [gts[i] for i in tr][:max_train]
    val_paths = [gts[i] for i in va][:max_val]
    train_table = table.iloc[tr][:max_train].reset_index(drop=True)
    dev = pick_device(device)
    torch.manual_seed(seed)
    return {"data_dir": data_dir, "device": dev, "train_paths": train_paths, "val_paths": val_paths, "table": table,
            "train_table": train_table}


def photo_list(path) -> list[Path]:
    """The photos a .txt file lists, one path per line (blank lines and lines starting with # skipped); a path
    that is not a file is an error naming the list and the line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: photo list not found")
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        p = Path(line)
        if not p.is_file():
            raise DataError(f"{path}, line {n}: {p}: photo not found")
        out.append(p)
    return out


def train_photo_paths(data_dir, train_paths, val_paths, photos=None) -> list[Path]:
    """The full-resolution colour photos that train_source='photos' crops afresh every epoch.

    photos: a folder (or a list, or a .txt file listing one path per line) of your own colour photos, used as
    they are; None: the source photos that data_dir/manifest.csv names for the train split's crops
    (tools/build_corpus.py and the sample dataset write it), less every photo that has a crop in the validation
    split, so that no validation crop is trained on."""
    if photos is not None:
        from .sample_data import folder_photo_paths

        if isinstance(photos, (str, Path)) and Path(photos).suffix.lower() == ".txt":
            paths = photo_list(photos)
        elif isinstance(photos, (str, Path)):
            paths = folder_photo_paths(photos)
        else:
            paths = [Path(p) for p in photos]
        if not paths:
            raise DataError(f"{photos}: no photos ({', '.join(IMAGE_EXTENSIONS)}) found")
        return paths
    manifest = Path(data_dir) / "manifest.csv"
    if not manifest.is_file():
        raise DataError(f"{manifest}: not found; train_source='photos' needs the full-resolution photos: pass photos= "
                        "(a folder of colour photos), or build the data with tools/build_corpus.py")
    man = read_csv_table(manifest)
    if not {"name", "source"} <= set(man.columns):
        raise DataError(f"{manifest}: needs the columns name and source (found {list(man.columns)})")
    # a relative source path is taken from the data dir (tools/build_corpus.py writes absolute ones)
    source = {n: str(Path(data_dir) / s) if not Path(s).is_absolute() else s for n, s in zip(man["name"], man["source"])}

    def of(paths):
        return {source[Path(p).name] for p in paths if Path(p).name in source}
    chosen = sorted(of(train_paths) - of(val_paths))
    missing = [s for s in chosen if not Path(s).is_file()]
    if missing:
        raise DataError(f"{missing[0]}: source photo named in {manifest} not found"
                        + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    if not chosen:
        raise DataError(f"{manifest}: no source photo of the train split is free of validation crops")
    return [Path(s) for s in chosen]


def train_val_datasets(train_paths, val_paths, size: int, seed: int = 0, damage: DamageConfig | None = None,
             train_style_share: float = 0.1, repeats: int = StageConfig.repeats,
             train_source: str = StageConfig.train_source, train_table: pd.DataFrame | None = None, photos=None,
             data_dir=None, crop_scale=StageConfig.crop_scale, stroke_share: float = StageConfig.stroke_share):
    """The training set and a fixed validation set with test-style polygon damage only.

    The synthetic damage is `damage`, or by default the competition's polygons with a share `train_style_share`
    of train-style holes and a share `stroke_share` of free-form strokes (0: none; `utils.damage.DamageConfig`).
    train_source: 'synthetic' (on-the-fly polygon damage, plus a share of train-style holes, drawn on the
    ground truths `train_paths`, each `repeats` times an epoch), 'provided' (the data set's own
    train_input/train_gt pairs, the rows of `train_table`; mask target = the pixels where the input differs
    from the ground truth's gray), 'both' (the two one after the other), or 'photos' (PhotoCropDataset: a fresh
    crop of each full-resolution photo every epoch, short side 512 x `crop_scale`, with synthetic damage; the
    photos are `train_photo_paths(data_dir, train_paths, val_paths, photos)`: your folder of photos, or by
    default the sources that data_dir's manifest names)."""
    if train_source not in TRAIN_SOURCES:
        raise ValueError(f"train_source must be one of {TRAIN_SOURCES}, got {train_source!r}")
    parts = []
    train_damage = damage or DamageConfig(train_style_share=train_style_share, stroke_share=stroke_share)
    if train_source == "photos":
        if photos is None and data_dir is None:
            raise ValueError("train_source='photos' needs photos (a folder of colour photos) or data_dir (its manifest)")
        train_photos = train_photo_paths(data_dir, train_paths, val_paths, photos)
        parts.append(PhotoCropDataset(train_photos, train_damage, size=size, seed=seed, scale=crop_scale, repeats=repeats))
    if train_source in ("synthetic", "both"):
        parts.append(SyntheticDamageDataset(train_paths, train_damage, size=size, seed=seed, repeats=repeats))
    if train_source in ("provided", "both"):
        if train_table is None:
            raise ValueError(f"train_source={train_source!r} needs train_table (the train split's rows of train.csv)")
        parts.append(ProvidedPairsDataset(train_table, size=size, augment=True, seed=seed))
    train = parts[0] if len(parts) == 1 else JoinedDataset(*parts)
    val = SyntheticDamageDataset(val_paths, DamageConfig(), size=size, fixed=True, seed=seed + 1)
    return train, val


def make_submission(
    restorer, data_dir, zip_path, png_dir=None, batch_size: int = 4, keep: bool = False, progress: bool = True
) -> BatchReport:
    """Restore every input of `<data_dir>/test.csv` into the submission zip `zip_path` (and the PNGs into
    `png_dir`), validated against test.csv: one flat PNG per test input, named as the input."""
    from ..inference.batch_restore import restore_files

    data_dir = Path(data_dir)
    test = load_test_table(data_dir)
    sources = [(Path(p).name, lambda p=p: read_image(p, "L", IMAGE_SIZE)) for p in test.input_image_path]
    return restore_files(
        restorer,
        sources,
        out_dir=png_dir,
        zip_path=zip_path,
        batch_size=batch_size,
        keep=keep,
        progress=progress,
        total=len(sources),
        expected=data_dir / "test.csv",
    )


__all__ = ["InpaintDataset", "JoinedDataset", "PhotoCropDataset", "ProvidedPairsDataset", "SyntheticDamageDataset",
           "check_images", "heldout_crops", "load_test_table", "load_train_table", "make_submission", "photo_list", "prepare_run",
           "resolve_data_dir", "split_indices", "train_photo_paths", "train_val_datasets"]
