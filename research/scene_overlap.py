"""Which photos of a held-out or validation set show a scene that a training photo also shows?

The corpus splits by photo, but some sources hold several photos of one scene: consecutive frames of one campus walk
(mvtb-data's campus/P10704xx), stereo pairs (walls-l/walls-r, motorcycle_left/right), a series of one flower bed.
A colour net that trained on one of them "knows" the other's colours, so a set mixing such photos with photos of new
scenes reports one number for two very different things. This finds, for every photo of each set, its nearest
training photo by ImageNet features (EfficientNet-Lite0, offline weights, global average pool of the gray photo
resized to 224x224) and calls it a seen scene at cosine >= --threshold; with --scores it splits a
per-photo results file (the format the colour experiments' tools/colour_variants.py wrote; see research/README.md)
into seen and new scenes.

    python research/scene_overlap.py --corpus corpus --sets heldout valset --scores runs/colour/heldout.json
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def validation_only_photos(corpus: Path) -> list[str]:
    """tools/build_heldout.py's validation_only_photos (tools/ is a folder of scripts, not a package: loaded
    from its file)."""
    spec = importlib.util.spec_from_file_location("build_heldout", ROOT / "tools" / "build_heldout.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.validation_only_photos(corpus)


def embed(paths, size: int = 224) -> np.ndarray:
    """[N,D] unit-norm ImageNet features of the photos' gray versions (as the colour net sees them)."""
    import cv2
    import torch
    from tqdm.auto import tqdm

    import utils
    from utils.core.models import load_pretrained_backbone

    net = load_pretrained_backbone("tf_efficientnet_lite0", "offline").eval()
    out = []
    for p in tqdm(list(paths), desc="photo features"):
        gray = utils.gray_of(utils.read_image(p, "RGB", convert=True))
        x = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        x = torch.from_numpy((x - 0.5) / 0.5)[None, None].repeat(1, 3, 1, 1)
        with torch.no_grad():
            f = net.forward_head(net.forward_features(x), pre_logits=True)[0].numpy()
        out.append(f / (np.linalg.norm(f) + 1e-12))
    return np.stack(out)


def nearest_train(corpus: Path, set_photos: list[str]) -> pd.DataFrame:
    """For each photo: its nearest training photo of the corpus and their cosine similarity."""
    man = pd.read_csv(corpus / "manifest.csv")     # the photos some net trained on (not the validation-only ones)
    train = sorted(set(man[man.split == "train"].source) - set(set_photos) - set(validation_only_photos(corpus)))
    sim = embed(set_photos) @ embed(train).T
    best = sim.argmax(1)
    return pd.DataFrame({"photo": set_photos, "nearest_train": [train[i] for i in best],
                         "cosine": sim[np.arange(len(set_photos)), best]})


def split_scores(scores: dict, seen: set, variant: str | None) -> pd.DataFrame:
    """Mean over photos (crops averaged per photo) of each variant's score and hue, for seen and new scenes."""
    photos = np.asarray(scores["image_photos"])
    rows = []
    for v, per in scores["per_image"].items():
        if variant and v != variant:
            continue
        per = np.asarray(per)
        for label, keep in (("seen scene", True), ("new scene", False)):
            ps = sorted({p for p in photos if (p in seen) == keep})
            if ps:
                by = np.stack([per[photos == p].mean(0) for p in ps])
                rows.append(
                    {"variant": v, "photos": label, "n": len(ps), "score": by[:, 0].mean(), "hue": by[:, 3].mean()}
                )
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path("corpus"))
    ap.add_argument(
        "--sets", type=Path, nargs="+", required=True, help="sets with a manifest.csv naming each crop's source"
    )
    ap.add_argument(
        "--threshold",
        type=float,
        default=0.6,
        help="cosine from which a photo counts as a seen scene (on the corpus the held-out photos fall apart at "
        "0.49 / 0.66)",
    )
    ap.add_argument(
        "--scores",
        type=Path,
        nargs="*",
        default=[],
        help="per-photo results JSONs to split ({'image_photos': [...], 'per_image': {variant: [[score, ssim, "
        "masked_ssim, hue], ...]}})",
    )
    ap.add_argument("--variant", default=None, help="only this variant of --scores")
    ap.add_argument("--csv", type=Path, default=None)
    args = ap.parse_args(argv)
    tables = []
    for s in args.sets:
        photos = sorted(pd.read_csv(s / "manifest.csv").source.unique())
        t = nearest_train(args.corpus, photos)
        t.insert(0, "set", s.name)
        tables.append(t)
    table = pd.concat(tables, ignore_index=True)
    table["seen_scene"] = table.cosine >= args.threshold
    short = lambda p: "/".join(Path(p).parts[-2:])  # noqa: E731
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(
            table.assign(photo=table.photo.map(short), nearest_train=table.nearest_train.map(short))
            .round(3)
            .to_string(index=False)
        )
    for s, g in table.groupby("set"):
        print(
            f"{s}: {int(g.seen_scene.sum())} of {len(g)} photos show a scene a training photo shows "
            f"(cosine >= {args.threshold})"
        )
    if args.csv:
        table.to_csv(args.csv, index=False)
    seen = set(table[table.seen_scene].photo)
    for path in args.scores:
        print(f"\n{path}:")
        print(split_scores(json.loads(path.read_text()), seen, args.variant).round(4).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
