"""The README's before/after picture: held-out photos as the competition gives them, restored, and the truth.

For a weights folder and a held-out folder in the competition layout (test_input/, test_gt/ and a manifest.csv
naming each crop's source photo; `tools/build_heldout.py corpus heldout --per-photo 3` writes one), it picks N
crops, a fixed choice for a given seed: one crop of one photo per source package (the folder under site-packages/
or the unpacked Debian package that the manifest's `source` names), packages in a seeded order, more than one per
package only when N exceeds the number of packages. Each crop is restored with natural colours
(`Restorer.from_dir(weights, colour="natural")`, what the app and `restore.py` give a single photo), and the grid
(rows = photos; columns = damaged input, restored, truth, with small titles) is written as a JPEG small enough for
the repository.

    python research/readme_figure.py --weights weights --data-dir heldout --out docs/images/before_after.jpg

--names HELD_003.png,HELD_050.png fixes the crops by name instead.
"""
from __future__ import annotations

import argparse
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

import utils

TITLES = ("damaged input", "restored (natural colours)", "ground truth")


def source_package(source: str) -> str:
    """The package a crop's source photo comes from: the folder after site-packages/ or unpacked/, else the
    source's first folder."""
    parts = PurePosixPath(str(source).replace("\\", "/")).parts
    for anchor in ("site-packages", "dist-packages", "unpacked"):
        if anchor in parts and parts.index(anchor) + 1 < len(parts) - 1:
            return parts[parts.index(anchor) + 1]
    return parts[0] if len(parts) > 1 else "."


def pick_crops(manifest: pd.DataFrame, n: int, seed: int = 0) -> list[str]:
    """n crop names of the test split, one per source package first (packages in a seeded order, a seeded photo
    and crop within each), never two crops of one photo while another photo is left."""
    rng = np.random.default_rng(seed)
    test = manifest[manifest["split"] == "test"] if "split" in manifest else manifest
    if test.empty:
        raise ValueError("the manifest lists no test crops")
    test = test.assign(package=test["source"].map(source_package))
    packages = sorted(test["package"].unique())
    order = [packages[i] for i in rng.permutation(len(packages))]
    chosen: list[str] = []
    used_photos: set[str] = set()
    while len(chosen) < min(n, len(test)):
        before = len(chosen)
        for package in order:
            if len(chosen) >= n:
                break
            rows = test[(test["package"] == package) & ~test["name"].isin(chosen)]
            fresh = rows[~rows["source"].isin(used_photos)]
            rows = fresh if len(fresh) else rows
            if rows.empty:
                continue
            photos = sorted(rows["source"].unique())
            photo = photos[rng.integers(len(photos))]
            names = sorted(rows.loc[rows["source"] == photo, "name"])
            chosen.append(names[rng.integers(len(names))])
            used_photos.add(photo)
        if len(chosen) == before:
            break
    return chosen


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one fixed-size bitmap font
        return ImageFont.load_default()


def grid(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]], tile: int, gap: int = 6,
         titles=TITLES) -> Image.Image:
    """rows of (input, restored, truth) uint8 images -> one RGB image: a title strip, then tile x tile images."""
    font = _font(max(12, tile // 22))
    title_h = max(20, tile // 14)
    cols = len(titles)
    width = cols * tile + (cols + 1) * gap
    height = title_h + len(rows) * (tile + gap) + gap
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for c, title in enumerate(titles):
        x = gap + c * (tile + gap) + tile // 2
        draw.text((x, title_h // 2 + gap // 2), title, fill=(30, 30, 30), font=font, anchor="mm")
    for r, images in enumerate(rows):
        for c, image in enumerate(images):
            im = Image.fromarray(image).convert("RGB").resize((tile, tile), Image.LANCZOS)
            canvas.paste(im, (gap + c * (tile + gap), title_h + gap + r * (tile + gap)))
    return canvas


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="weights", help="weights folder (default: weights)")
    parser.add_argument("--data-dir", default="heldout",
                        help="held-out folder: test_input/, test_gt/, manifest.csv (default: heldout)")
    parser.add_argument("--out", default="docs/images/before_after.jpg")
    parser.add_argument("-n", type=int, default=4, help="number of photos (rows; default 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--names", default=None, help="comma-separated crop names instead of the seeded choice")
    parser.add_argument("--width", type=int, default=1200, help="largest width of the picture in pixels")
    parser.add_argument("--quality", type=int, default=85, help="JPEG quality")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    data = Path(args.data_dir)
    if args.names:
        names = [n.strip() for n in args.names.split(",") if n.strip()]
    else:
        manifest_path = data / "manifest.csv"
        if not manifest_path.is_file():
            parser.error(f"{manifest_path} not found: build a held-out folder with tools/build_heldout.py, "
                         "or name the crops with --names")
        names = pick_crops(pd.read_csv(manifest_path), args.n, args.seed)
    if not names:
        parser.error("no crops to show")
    for sub in ("test_input", "test_gt"):
        missing = [n for n in names if not (data / sub / n).is_file()]
        if missing:
            parser.error(f"not in {data / sub}: {', '.join(missing)}")

    restorer = utils.Restorer.from_dir(args.weights, device=args.device, colour="natural")
    damaged = [np.asarray(Image.open(data / "test_input" / n).convert("L")) for n in names]
    truth = [np.asarray(Image.open(data / "test_gt" / n).convert("RGB")) for n in names]
    restored = [r.restored for r in restorer.restore_images(damaged, batch_size=2)]

    gap = 6
    tile = min(512, (args.width - 4 * gap) // 3)
    picture = grid(list(zip(damaged, restored, truth)), tile=tile, gap=gap)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    picture.save(tmp, format="JPEG", quality=args.quality, optimize=True)
    tmp.replace(out)
    print(f"wrote {out} ({picture.width}x{picture.height}, {out.stat().st_size / 1024:.0f} KB): {', '.join(names)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
