"""Cross-fitted colour training: a colour net per fold of the train photos, each fold's photos then restored by
the net that never trained on them, so that the hue head and the post-processing are fitted and chosen on
what a colour net does on NEW photos, with every train photo in the validation (not 8 of them).

Why: the hue head combines the colour net's own hue distribution with the prior. Fitted on the net's features of
its own training photos, it learns to trust the net far more than it deserves on unseen photos (on the held-out
photos every head fitted that way equals or trails the prior: weights/colour_experiments.md (e)). Cross-fitting is
the standard cure (stacking): out-of-fold features for the head, out-of-fold scores for the choices.

Steps (each is skipped when its output is there, so a rerun resumes; training itself resumes per epoch):
1. plan: the corpus's train photos less the validation-only ones (kept out of everything, to compare the result
   with other weights), dealt into --folds folds stratified by source package; --out/plan.json and one photo list
   per net (<name>_train.txt) and per fold (fold<k>_photos.txt).
2. train: tools/train.py --train-source photos (fresh random crops every epoch) for each fold's net (all photos but
   the fold's) and for the final net on all of them, with the recipe given here.
3. weights: --out/weights_<name> (tools/candidate_weights.py: --base with the new colour net).
4. validation sets: --per-photo crops of each fold's photos with competition damage (tools/build_heldout.py).
5. head: tools/fit_hue_head.py --cross-fit: features of each photo from its fold's net; the head goes into
   weights_all; head_fold<k>.json is the head fitted without fold k.
6. validate: tools/colour_variants.py on all folds pooled, fold k's crops through weights_fold<k> and
   head_fold<k> (nothing in fold k's numbers saw fold k): --out/crossfit_validation.json.

    python tools/cross_fit_colour.py --corpus corpus --out xfit --folds 4 --epochs 8 --repeats 8 \\
        --loss classify+hist --rebalance-lambda 1.0
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
VARIANTS = ["hue=none", "hue=prior", "hue=head", "hue=oracle", "hue=head;chroma=32/1e-2/0.5/ring",
            "hue=head;chroma=32/1e-2/0.25/ring;hc=3", "hue=head;chroma=0/1e-3/0/ring;hc=3",
            "hue=head;chroma=32/1e-2/0/ring;hc=3", "hue=prior;chroma=32/1e-2/0.25/ring;hc=3"]


def deal_folds(photos: list[str], package_of: dict, folds: int, seed: int) -> list[list[str]]:
    """Photos into `folds` folds: each package's photos shuffled (seeded) and dealt round-robin, one counter
    across packages, so every fold gets a share of every source."""
    rng = random.Random(seed)
    out, i = [[] for _ in range(folds)], 0
    for pkg in sorted({package_of[p] for p in photos}):
        xs = [p for p in photos if package_of[p] == pkg]
        rng.shuffle(xs)
        for x in xs:
            out[i % folds].append(x)
            i += 1
    return out


def make_plan(corpus: Path, out: Path, folds: int, seed: int) -> dict:
    import pandas as pd

    from build_heldout import validation_only_photos
    from fit_hue_head import train_photos

    man = pd.read_csv(corpus / "manifest.csv")
    package_of = dict(zip(man.source, man.package))
    skip = set(validation_only_photos(corpus))
    pool = [p for p in train_photos(corpus) if p not in skip]
    if len(pool) < 2 * folds:
        raise ValueError(f"{corpus}: {len(pool)} train photos are too few for {folds} folds")
    dealt = deal_folds(pool, package_of, folds, seed)
    nets = {f"fold{k}": [x for j in range(folds) if j != k for x in dealt[j]] for k in range(folds)}
    nets["all"] = pool
    plan = {"corpus": str(corpus), "seed": seed, "validation_only": sorted(skip),
            "folds": [{"name": f"fold{k}", "photos": dealt[k], "weights": str(out / f"weights_fold{k}")}
                      for k in range(folds)],
            "final": {"name": "all", "weights": str(out / "weights_all")},
            "train_lists": {name: str(out / f"{name}_train.txt") for name in nets}}
    out.mkdir(parents=True, exist_ok=True)
    for name, photos in nets.items():
        (out / f"{name}_train.txt").write_text("\n".join(photos) + "\n")
    for k in range(folds):
        (out / f"fold{k}_photos.txt").write_text("\n".join(dealt[k]) + "\n")
    return plan


def trained_epochs(ck: Path) -> int:
    cfg = ck / "color.json"
    return int(json.loads(cfg.read_text()).get("epoch", 0)) if cfg.is_file() else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path("corpus"))
    ap.add_argument("--out", type=Path, default=Path("runs/cross_fit"))
    ap.add_argument("--base", type=Path, default=ROOT / "weights", help="the other stages and post-processing")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--seed", type=int, default=12, help="the folds' deal")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=8, help="fresh crops of each photo per epoch")
    ap.add_argument("--loss", default="classify+hist")
    ap.add_argument("--rebalance-lambda", type=float, default=1.0)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--train-seed", type=int, default=0)
    ap.add_argument("--train-arg", action="append", default=[], help="any other tools/train.py option, e.g. "
                    "--train-arg=--encoder=tf_efficientnet_lite0 (repeatable)")
    ap.add_argument("--per-photo", type=int, default=3, help="validation crops per photo")
    ap.add_argument("--crops", type=int, default=480, help="crops for the head's features")
    ap.add_argument("--variants", nargs="*", default=VARIANTS)
    ap.add_argument("--steps", nargs="*", default=["plan", "train", "weights", "valsets", "head", "validate"])
    args = ap.parse_args(argv)
    # absolute paths in the plan and for the tools it calls (a relative path is taken from the working directory)
    out, args.corpus = args.out.resolve(), args.corpus.resolve()
    plan_path = out / "plan.json"
    recipe = {"corpus": str(args.corpus), "folds": args.folds, "seed": args.seed, "per_photo": args.per_photo,
              "train": {"epochs": args.epochs, "repeats": args.repeats, "loss": args.loss,
                        "rebalance_lambda": args.rebalance_lambda, "lr": args.lr, "seed": args.train_seed,
                        "train_args": args.train_arg}}
    if plan_path.is_file():
        plan = json.loads(plan_path.read_text())
        def flat(r: dict) -> dict:    # every setting but the epochs (more epochs resume the same training)
            return {**{k: v for k, v in r.items() if k != "train"},
                    **{f"train.{k}": v for k, v in r.get("train", {}).items() if k != "epochs"}}
        before, now = flat(plan.get("recipe", {})), flat(recipe)
        changed = {k: (before.get(k), v) for k, v in now.items() if before.get(k) != v}
        if changed:
            print(f"error: {plan_path} was made with other settings ({changed}; before -> now): use another --out, "
                  "or the same settings (only --epochs may grow: training resumes)", file=sys.stderr)
            return 2
    elif "plan" in args.steps:
        plan = make_plan(args.corpus, out, args.folds, args.seed)
        plan["recipe"] = recipe
        plan_path.write_text(json.dumps(plan, indent=1))
        print(f"{plan_path}: {sum(len(f['photos']) for f in plan['folds'])} photos in {args.folds} folds "
              f"({[len(f['photos']) for f in plan['folds']]}), {len(plan['validation_only'])} validation-only left out")
    else:
        print(f"error: {plan_path} not found: run the plan step first", file=sys.stderr)
        return 2
    names = [f["name"] for f in plan["folds"]] + [plan["final"]["name"]]
    if "train" in args.steps:
        for name in names:
            ck = out / f"ck_{name}"
            if trained_epochs(ck) >= args.epochs:
                print(f"{ck}: trained ({trained_epochs(ck)} epochs)")
                continue
            cmd = [sys.executable, str(ROOT / "tools" / "train.py"), "--stage", "color", "--data-dir", str(args.corpus),
                   "--ckpt-dir", str(ck), "--train-source", "photos", "--photos", plan["train_lists"][name],
                   "--loss", args.loss, "--rebalance-lambda", str(args.rebalance_lambda), "--epochs", str(args.epochs),
                   "--repeats", str(args.repeats), "--no-validate", "--seed", str(args.train_seed), *args.train_arg]
            if args.lr is not None:
                cmd += ["--lr", str(args.lr)]
            print(" ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
    if "weights" in args.steps:
        from candidate_weights import assemble

        for name in names:
            w = out / f"weights_{name}"
            if not (w / "color.json").is_file() or trained_epochs(w) != trained_epochs(out / f"ck_{name}"):
                assemble(out / f"ck_{name}", w, args.base)
                print(f"{w}: colour net of ck_{name}")
                if name != plan["final"]["name"]:   # what the old fold net computed is stale: features, restorations
                    for stale in [out / "head" / "features.npz", *(out / "cache").glob(f"cache_val_{name}_*.npz")]:
                        stale.unlink(missing_ok=True)
    vals = [out / f"val_{f['name']}" for f in plan["folds"]]
    if "valsets" in args.steps:
        from build_heldout import main as build_heldout

        for k, v in enumerate(vals):
            if not (v / "manifest.csv").is_file():
                rc = build_heldout([str(args.corpus), str(v), "--photos-from", str(out / f"fold{k}_photos.txt"),
                                    "--per-photo", str(args.per_photo), "--seed", str(100 + k)])
                if rc:
                    return rc
    if "head" in args.steps:
        from fit_hue_head import main as fit_hue_head

        rc = fit_hue_head(["--corpus", str(args.corpus), "--weights", plan["final"]["weights"], "--out", str(out / "head"),
                           "--crops", str(args.crops), "--cross-fit", str(plan_path), "--save"])
        if rc:
            return rc
    if "validate" in args.steps:
        from colour_variants import main as colour_variants

        return colour_variants(["--data-dir", *map(str, vals), "--weights", *(f["weights"] for f in plan["folds"]),
                                "--head", *(str(out / "head" / f"head_fold{k}.json") for k in range(len(vals))),
                                "--cache", str(out / "cache"), "--json", str(out / "crossfit_validation.json"),
                                "--variants", *args.variants, "--paired", args.variants[0]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
