"""Build a larger held-out test set from the held-out photos of a built corpus.

The corpus (tools/build_corpus.py) holds out ~12% of its photos (by a hash of the file name) and writes only
up to 2 test crops per photo, too few for differences of 0.01 to mean something. This writes, from the same
held-out photos only (never trained or validated on), `--per-photo` crops per photo at random positions and
scales (short side resized to 512 x s, s drawn from --scale), with the competition's polygon damage, in the
competition layout: test_input/, test_gt/, test_mask/, test.csv and a manifest.csv (source, crop, damage).

    python tools/build_heldout.py corpus heldout --per-photo 5

--validation-only takes the train photos that no network trained on instead; --photos-from LIST.txt takes the
photos a list names (one path per line: e.g. a fold of tools/cross_fit_colour.py).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parent.parent


def heldout_photos(corpus: Path) -> list[str]:
    """Source files of the corpus's test split (photos no stage trained or validated on)."""
    man = pd.read_csv(corpus / "manifest.csv")
    test, train = set(man[man.split == "test"].source), set(man[man.split == "train"].source)
    overlap = test & train
    if overlap:
        raise ValueError(f"{corpus}/manifest.csv: photos in both splits: {sorted(overlap)[:3]}")
    return sorted(test)


def validation_only_photos(corpus: Path, val_fraction: float = 0.1, seed: int = 0) -> list[str]:
    """Train-split photos all of whose crops fell in the notebooks' validation split (`utils.prepare_run`: by crop,
    seed 0, 10%): no network trained on them (they were only validated on). A set for choosing settings
    without touching the test photos."""
    import utils

    table = utils.load_train_table(corpus)
    tr, va = utils.split_indices(len(table), val_fraction, seed, utils.datasets.crop_groups(corpus, table))
    src = pd.read_csv(corpus / "manifest.csv").set_index("name")["source"]
    of = lambda i: src[Path(table.gt_image_path[i]).name]  # noqa: E731
    return sorted({of(i) for i in va} - {of(i) for i in tr})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--per-photo", type=int, default=5)
    ap.add_argument("--scale", type=float, nargs=2, default=(1.0, 2.5), help="range of short side / 512")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--validation-only", action="store_true", help="crops of the train photos that no network "
                    "trained on (validation-only, see validation_only_photos) instead of the test photos")
    ap.add_argument("--photos-from", type=Path, default=None, metavar="LIST", help="the photos this text file lists "
                    "(one path per line) instead of the test photos")
    args = ap.parse_args(argv)
    if args.photos_from and args.validation_only:
        ap.error("--photos-from and --validation-only choose the photos each: give one")
    import utils
    from utils.data.sample_data import random_crop

    if args.photos_from:
        photos = [str(p) for p in utils.photo_list(args.photos_from)]
    else:
        photos = validation_only_photos(args.corpus) if args.validation_only else heldout_photos(args.corpus)
    if not photos:
        print(f"error: {args.photos_from or f'{args.corpus}/manifest.csv'} has no photos to crop", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    rows, manifest = [], []
    for src in tqdm(photos, desc="held-out photos"):
        rgb = utils.read_image(src, "RGB", convert=True)
        for _ in range(args.per_photo):
            crop, info = random_crop(rgb, rng, scale=tuple(args.scale))
            dmg = utils.sample_damage(rng, utils.DamageConfig())
            name = f"HELD_{len(rows):03d}.png"
            utils.write_png(args.out / "test_gt" / name, crop)
            utils.write_png(args.out / "test_mask" / name, dmg.mask.astype(np.uint8) * 255)
            utils.write_png(args.out / "test_input" / name, utils.apply_damage(utils.gray_of(crop), dmg))
            rows.append({"input_image_path": f"./test_input/{name}"})
            manifest.append(
                {"split": "test", "name": name, "damage": dmg.kind, "fill": dmg.fill, "source": src, **info}
            )
    pd.DataFrame(manifest).to_csv(args.out / "manifest.csv", index=False)
    pd.DataFrame(rows).to_csv(args.out / "test.csv", index=False)
    print(f"{args.out}: {len(rows)} crops from {len(photos)} photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
