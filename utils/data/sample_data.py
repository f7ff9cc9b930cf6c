"""Build a dataset in the competition layout from a folder of color photos.

With no folder it uses the photos that ship inside already-required packages (scikit-image,
scikit-learn, matplotlib), so the main command runs offline on a fresh machine. Photos are split
between train and test by photo, so test crops come from photos the train set never saw.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from .damage import DamageConfig, apply_damage, sample_damage
from ..core.guards import decode_image
from ..core.images import IMAGE_EXTENSIONS, IMAGE_SIZE, DataError, gray_of, write_png
from ..core.paths import project_root

# Real photographs only (no renders, microscopy or space images); the stereo pair stays together.
BUILTIN_PHOTOS = {
    "scikit-image": ["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg",
                     "motorcycle_left.png", "motorcycle_right.png"],
    "scikit-learn": ["china.jpg", "flower.jpg"],
    "matplotlib": ["grace_hopper.jpg"],
}
# Held out for the test split of the built-in sample (never seen in its train split).
BUILTIN_TEST = ("china.jpg", "rocket.jpg", "grace_hopper.jpg")
# Stamped into every manifest row; raise it whenever the builder's output changes, so that datasets built by
# an older builder are rebuilt (bundled photos) or flagged (user photos) by `ensure_dataset`.
# 2: train-style squares are filled squares (builder 1 drew them as one-pixel diagonal lines).
BUILDER_VERSION = 2


def builtin_photo_paths() -> list[Path]:
    import matplotlib
    import skimage
    import sklearn

    roots = {
        "scikit-image": Path(skimage.__file__).parent / "data",
        "scikit-learn": Path(sklearn.__file__).parent / "datasets" / "images",
        "matplotlib": Path(matplotlib.get_data_path()) / "sample_data",
    }
    paths = [roots[pkg] / name for pkg, names in BUILTIN_PHOTOS.items() for name in names]
    return [p for p in paths if p.is_file()]


def builtin_photo_info() -> dict:
    """Source package and licence of each bundled photo (from the packages' own notes)."""
    lic = {"scikit-image": "see skimage/data/README.txt (public domain / CC0 / CC-BY per image)",
           "scikit-learn": "see sklearn/datasets/images/README.txt",
           "matplotlib": "public domain (matplotlib sample_data)"}
    info = {}
    for p in builtin_photo_paths():
        pkg = next(k for k, names in BUILTIN_PHOTOS.items() if p.name in names)
        info[str(p)] = {"package": pkg, "license": lic[pkg]}
    return info


def folder_photo_paths(folder) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: photo folder not found")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)


# What a usable colour photo is, for build_sample_dataset and tools/build_corpus.py alike:
MIN_PHOTO_SIDE = 300            # short side in pixels; a 512 crop of a smaller photo is an enlargement of over 1.7x
GRAY_SATURATION = 20            # mean HSV saturation (0-255, at 256x256) under which a photo is gray (no colour)
MAX_TRANSPARENT_SHARE = 0.01    # share of (partly) transparent pixels (alpha < 250) above which a photo is a cut-out


def is_gray(rgb: np.ndarray) -> bool:
    """Whether an RGB uint8 photo is gray (or nearly): its mean HSV saturation at 256x256 is under GRAY_SATURATION."""
    small = rgb if rgb.shape[:2] == (256, 256) else cv2.resize(rgb, (256, 256), interpolation=cv2.INTER_AREA)
    return bool(cv2.cvtColor(small, cv2.COLOR_RGB2HSV)[..., 1].mean() < GRAY_SATURATION)


def transparent_share(im: Image.Image) -> float:
    """The share of pixels with alpha < 250 (0 for an image without transparency)."""
    if im.mode not in ("RGBA", "LA", "P"):
        return 0.0
    return float((np.asarray(im.convert("RGBA"))[..., 3] < 250).mean())


def photo_problem(path, min_side: int = MIN_PHOTO_SIDE) -> str | None:
    """Why a photo cannot be a colour ground truth, or None when it can: unreadable or truncated (the message of
    `utils.guards.decode_image`), too small (short side under MIN_PHOTO_SIDE), transparent (over
    MAX_TRANSPARENT_SHARE of its pixels: a cut-out, as tools/build_corpus.py drops) or gray (`is_gray`)."""
    try:
        im = decode_image(path)
    except DataError as e:
        return str(e).removeprefix(f"{path}: ")
    w, h = im.size
    if min(w, h) < min_side:
        return (f"too small ({w}x{h}; the short side must be at least {min_side} px for "
                f"{IMAGE_SIZE}x{IMAGE_SIZE} crops)")
    share = transparent_share(im)
    if share > MAX_TRANSPARENT_SHARE:
        return f"transparent ({share:.0%} of its pixels; a cut-out, not a photo)"
    if is_gray(np.asarray(im.convert("RGB"))):
        return "gray (no colour to learn)"
    return None


def usable_photos(photos, where=None, min_side: int = MIN_PHOTO_SIDE) -> list[Path]:
    """The photos that pass `photo_problem`, checked before anything is written; each one left out is printed with
    the reason, then a summary. None usable: a DataError naming `where` (the folder) and the reasons."""
    photos = [Path(p) for p in photos]
    if where is None:
        parents = {p.parent for p in photos}
        where = parents.pop() if len(parents) == 1 else "photos"
    kept, left_out = [], []
    for p in tqdm(photos, desc="checking photos", leave=False):
        why = photo_problem(p, min_side)
        if why is None:
            kept.append(p)
        else:
            left_out.append((p, why))
            print(f"left out {p}: {why}")
    print(f"{where}: {len(kept)} of {len(photos)} photos usable" + (f", {len(left_out)} left out" if left_out else ""))
    if not kept:
        reasons = "; ".join(f"{p.name}: {why}" for p, why in left_out[:10])
        more = f" (and {len(left_out) - 10} more)" if len(left_out) > 10 else ""
        raise DataError(f"{where}: no usable colour photo ({len(photos)} found"
                        + (f": {reasons}{more})" if photos else ")"))
    return kept


def random_crop(rgb: np.ndarray, rng: np.random.Generator, size: int = IMAGE_SIZE,
                scale=(1.0, 1.6)) -> tuple[np.ndarray, dict]:
    """Resize so the short side is size*s (s drawn from `scale`), then take a random square crop."""
    h, w = rgb.shape[:2]
    s = float(rng.uniform(*scale)) * size / min(h, w)
    nh, nw = max(size, round(h * s)), max(size, round(w * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    big = cv2.resize(rgb, (nw, nh), interpolation=interp)
    y, x = int(rng.integers(0, nh - size + 1)), int(rng.integers(0, nw - size + 1))
    crop = big[y:y + size, x:x + size]
    flip = bool(rng.random() < 0.5)
    if flip:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop), {"scale": round(s, 4), "x": x, "y": y, "flip": flip}


def _load_rgb(path: Path) -> np.ndarray:
    return np.asarray(decode_image(path).convert("RGB"))


def crops_for_resolution(h: int, w: int, max_crops: int = 8) -> int:
    """How many distinct 512 crops a photo supports: about one per 512x512 of area, 1..max_crops."""
    return int(np.clip(round(h * w / IMAGE_SIZE ** 2), 1, max_crops))


def _crops(photos, n, rng, desc, info=None, max_crops: int = 8):
    """n crops spread evenly over the photos (round robin); n=None: as many as each photo's resolution
    supports (crops_for_resolution)."""
    info = info or {}
    plan = []
    if n is None:
        for p in photos:
            with Image.open(p) as im:
                w, h = im.size
            plan += [p] * crops_for_resolution(h, w, max_crops)
    else:
        plan = [photos[i % len(photos)] for i in range(n)]
    cache_path, cache = None, None
    out = []
    for p in tqdm(plan, desc=desc, leave=False):
        if p != cache_path:
            cache_path, cache = p, _load_rgb(p)
        crop, crop_info = random_crop(cache, rng)
        out.append((crop, {"source": str(p), **info.get(str(p), {}), **crop_info}))
    return out


def build_sample_dataset(out_dir, photos=None, n_train: int | None = 24, n_test: int | None = 8, seed: int = 0,
                         test_photos=None, train_damage: DamageConfig | None = None,
                         test_damage: DamageConfig | None = None, overwrite: bool = False,
                         photo_info: dict | None = None, max_crops=(8, 2), min_side: int = MIN_PHOTO_SIDE) -> Path:
    """Write train_input/, train_gt/, test_input/, test_gt/, test_mask/, train.csv, test.csv and
    manifest.csv under out_dir. `photos`: a folder or a list of paths (default: the built-in photos).
    Train inputs get train-style damage (near-black squares/circles) like the competition's,
    test inputs the polygon damage of the competition's test set. n_train/n_test=None: as many crops
    per photo as its resolution supports, at most max_crops=(train, test). photo_info: {path: {...}} columns added to the manifest.
    min_side: the shortest photo side accepted (tools/build_corpus.py takes smaller photos for the 256-px nets).

    Your own photos (`photos` given) are all checked before anything is written (`usable_photos`): unreadable,
    truncated, too small, transparent and gray ones are left out, each named with the reason; none usable is a
    DataError naming the folder. The bundled photos (the default) are known good and used as they are."""
    out = Path(out_dir)
    if (out / "train.csv").exists() and not overwrite:
        raise FileExistsError(f"{out}: a dataset is already there (pass overwrite=True to rebuild)")
    where = None
    if photos is None:
        photos = builtin_photo_paths()
        photo_info = photo_info or builtin_photo_info()
        test_photos = [p for p in photos if p.name in BUILTIN_TEST] if test_photos is None else test_photos
    else:
        if isinstance(photos, (str, Path)):
            where, photos = photos, folder_photo_paths(photos)
            if not photos:
                raise DataError(f"{where}: no photos ({', '.join(IMAGE_EXTENSIONS)}) found")
        photos = usable_photos(photos, where, min_side)
    photos = [Path(p) for p in photos]
    if len(photos) < 2:
        raise DataError(f"{where or 'photos'}: need at least 2 usable photos to split into train and test, "
                        f"got {len(photos)}")
    rng = np.random.default_rng(seed)
    if test_photos is None:
        order = rng.permutation(len(photos))
        n_hold = max(1, len(photos) // 4)
        test_photos = [photos[i] for i in order[:n_hold]]
    test_set = {Path(p) for p in test_photos}
    train_photos = [p for p in photos if p not in test_set]
    test_photos = [p for p in photos if p in test_set]
    if not train_photos or not test_photos:
        split = "test" if train_photos else "train"
        raise DataError(f"{where or 'photos'}: no usable photo left for the {split} split "
                        f"({len(train_photos)} train, {len(test_photos)} test photos)")

    train_damage = train_damage or DamageConfig(train_style_share=1.0)
    test_damage = test_damage or DamageConfig()
    if overwrite:
        for sub in ("train_input", "train_gt", "test_input", "test_gt", "test_mask"):
            shutil.rmtree(out / sub, ignore_errors=True)

    manifest, train_rows, test_rows = [], [], []
    for i, (crop, info) in enumerate(_crops(train_photos, n_train, rng, "train crops", photo_info, max_crops[0])):
        name = f"TRAIN_{i:05d}.png"
        dmg = sample_damage(rng, train_damage)
        write_png(out / "train_gt" / name, crop)
        write_png(out / "train_input" / name, apply_damage(gray_of(crop), dmg))
        train_rows.append({"input_image_path": f"./train_input/{name}", "gt_image_path": f"./train_gt/{name}"})
        manifest.append({"split": "train", "name": name, "damage": dmg.kind, "fill": dmg.fill,
                         "builder_version": BUILDER_VERSION, **info})
    for i, (crop, info) in enumerate(_crops(test_photos, n_test, rng, "test crops", photo_info, max_crops[1])):
        name = f"TEST_{i:03d}.png"
        dmg = sample_damage(rng, test_damage)
        write_png(out / "test_gt" / name, crop)
        write_png(out / "test_mask" / name, dmg.mask.astype(np.uint8) * 255)
        write_png(out / "test_input" / name, apply_damage(gray_of(crop), dmg))
        test_rows.append({"input_image_path": f"./test_input/{name}"})
        manifest.append({"split": "test", "name": name, "damage": dmg.kind, "fill": dmg.fill,
                         "builder_version": BUILDER_VERSION, **info})
    pd.DataFrame(manifest).to_csv(out / "manifest.csv", index=False)
    pd.DataFrame(test_rows).to_csv(out / "test.csv", index=False)
    pd.DataFrame(train_rows).to_csv(out / "train.csv", index=False)  # last: its presence marks a complete build
    return out


def builder_version(data_dir) -> int | None:
    """The version of the builder that wrote data_dir: 0 for a manifest without a stamp (builder 1 wrote
    none), None when data_dir has no manifest (e.g. the competition's own data)."""
    manifest = Path(data_dir) / "manifest.csv"
    if not manifest.exists():
        return None
    table = pd.read_csv(manifest)
    if "builder_version" not in table or table["builder_version"].isna().any():
        return 0
    return int(table["builder_version"].min())


def _built_from_bundled_photos(data_dir) -> bool:
    sources = set(pd.read_csv(Path(data_dir) / "manifest.csv").get("source", pd.Series(dtype=str)).dropna())
    bundled = {str(p) for p in builtin_photo_paths()}
    names = {Path(p).name for names in BUILTIN_PHOTOS.values() for p in names}
    return bool(sources) and all(s in bundled or Path(s).name in names for s in sources)


def is_sample_dataset(data_dir) -> bool:
    """Whether data_dir holds the sample dataset built from the bundled photos (its manifest.csv names only them):
    the data that tools/run_notebooks.py's short training runs and the shipped weights in notebook 05 are meant for.
    No manifest, or an unreadable one: not the sample dataset."""
    if not (Path(data_dir) / "manifest.csv").is_file():
        return False
    try:
        return bool(_built_from_bundled_photos(data_dir))
    except (OSError, ValueError, KeyError):
        return False


def is_default_data_dir(data_dir) -> bool:
    """Whether data_dir is the repository's own data/ (<root>/data, what a data dir left unset means): the one
    folder where `ensure_dataset` builds the sample dataset when none is there."""
    return Path(data_dir).expanduser().resolve() == (project_root() / "data").resolve()


def check_data_dir(data_dir) -> Path:
    """data_dir when `ensure_dataset` can use it: it holds a dataset (train.csv), or it is the default data folder
    (the sample dataset is built there). Else a DataError naming the folder and what is missing: a folder someone
    named is never replaced by sample data behind their back (a typo would quietly run on it)."""
    data_dir = Path(data_dir)
    if (data_dir / "train.csv").is_file() or is_default_data_dir(data_dir):
        return data_dir
    layout = "train.csv, test.csv, train_input/, train_gt/, test_input/"
    hint = (f"the sample dataset is built only in the default {project_root() / 'data'} (when no data dir is given); "
            f"for one here: utils.build_sample_dataset({str(data_dir)!r})")
    if not data_dir.exists():
        raise DataError(f"{data_dir}: folder not found (expected a dataset: {layout}; {hint})")
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: not a folder (expected a dataset folder with {layout})")
    raise DataError(f"{data_dir}: no dataset there (no train.csv; expected {layout}; {hint})")


def ensure_dataset(data_dir, **kwargs) -> Path:
    """Build the sample dataset in data_dir unless a dataset (train.csv) is already there, when data_dir is the
    default data folder (<root>/data, `is_default_data_dir`); any other folder without a dataset is a DataError
    naming it (`check_data_dir`).

    A dataset that an older builder wrote (its manifest's `builder_version` below BUILDER_VERSION) is rebuilt
    when it holds only the bundled photos; one built from other photos raises a DataError that says how to
    rebuild it (the photos are the user's, and may have moved). A dataset without manifest (the competition's
    own) is used as it is."""
    data_dir = Path(data_dir)
    if not (data_dir / "train.csv").exists():
        check_data_dir(data_dir)
        print(f"no dataset in {data_dir}: building the sample dataset from the bundled photos")
        return build_sample_dataset(data_dir, **kwargs)
    version = builder_version(data_dir)
    if version is not None and version < BUILDER_VERSION:
        if _built_from_bundled_photos(data_dir):
            print(f"{data_dir}: sample dataset from an older builder (version {version} < {BUILDER_VERSION}); "
                  "rebuilding it")
            return build_sample_dataset(data_dir, overwrite=True, **kwargs)
        raise DataError(f"{data_dir}: built by an older dataset builder (version {version} < {BUILDER_VERSION}: "
                        "its train-style squares are drawn wrong); rebuild it with "
                        f"utils.build_sample_dataset({str(data_dir)!r}, photos=..., overwrite=True)")
    return data_dir


__all__ = ["build_sample_dataset", "builtin_photo_paths", "ensure_dataset"]
