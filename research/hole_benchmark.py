"""The hole's luminance, method by method: on a held-out folder (tools/build_heldout.py), each method fills the hole of
the damaged gray input given the TRUE mask, and the metric's masked SSIM (1-D over the hole's pixels) is computed on
the luminance against the truth. Methods: the classical fills (OpenCV Telea; the biharmonic fill at 1/4 size,
scikit-image on a 4x smaller image; the biharmonic fill at full size, utils.inference.biharmonic); the inpainter of
a weights folder over each of them (utils.inpaint; its weights record the one it was trained over); optionally the
previous project version's inpainter (--old-repo: a checkout of it, run in its own process) and more inpainters
(--also, each over its own recorded pre-fill); and the truth blurred by a Gaussian of sigma 4 / 8 / 16 px (how much
coarse structure is worth). Prints mean masked SSIM with 95% intervals, paired differences over photos (each photo's
crops averaged first), time per image (the inpainter's includes its pre-fill), and writes JSON, each crop's scores
(CSV) and a grid of the worst and best holes of the inpainter over its own pre-fill.

    python research/hole_benchmark.py heldout --weights weights --old-repo ../old --out runs/hole
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

OLD_RUNNER = """
import sys, numpy as np, utils
from pathlib import Path
from PIL import Image
from utils.core.checkpoints import load_model
net, _ = load_model(Path(sys.argv[1]) / 'inpaint', 'cpu')
src, out = Path(sys.argv[2]), Path(sys.argv[3])
out.mkdir(parents=True, exist_ok=True)
for name in sys.argv[4:]:
    g = np.asarray(Image.open(src / 'test_input' / name).convert('L'))
    m = np.asarray(Image.open(src / 'test_mask' / name).convert('L')) > 0
    rgb = utils.inpaint(net, [np.repeat(g[..., None], 3, -1)], [m], 256)[0]
    Image.fromarray(utils.gray_of(rgb)).save(out / name)
"""


def interval(values) -> tuple[float, float]:
    v = np.asarray(values, float)
    half = 1.96 * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
    return float(v.mean()), float(half)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path)
    ap.add_argument("--weights", type=Path, default=Path("weights"))
    ap.add_argument("--old-repo", type=Path, default=None, help="a checkout of an earlier version (its weights/)")
    ap.add_argument("--out", type=Path, default=Path("runs/hole"))
    ap.add_argument("--baseline", default="Telea", help="the method the paired differences are against")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--also", type=Path, nargs="*", default=[],
                    help="more inpainter weights folders, each a method named 'inpainter, <folder name>' over "
                         "its own pre-fill (the loss comparison: --also runs/l1_gan --baseline 'inpainter, l1_gan')")
    ap.add_argument("--largest", type=int, default=0, metavar="N",
                    help="only time the pre-fills on N competition polygons with both box sides >= 440 px, drawn on "
                         "the folder's truths (the largest holes the test set has), and exit")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (OpenCV and torch)")
    args = ap.parse_args(argv)
    import torch

    import utils
    from utils import prefill
    from utils.core.metric import masked_ssim_term

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    man = pd.read_csv(args.data / "manifest.csv")[: args.limit]
    if args.largest:
        return time_largest(args.data, list(man["name"]), args.largest, args.threads)
    names, photos = list(man["name"]), list(man["source"])
    read = lambda sub, n: np.asarray(utils.read_image(args.data / sub / n, "L"))  # noqa: E731
    truth = {n: utils.gray_of(utils.read_image(args.data / "test_gt" / n, "RGB")) for n in names}
    gray = {n: read("test_input", n) for n in names}
    mask = {n: read("test_mask", n) > 0 for n in names}
    starts = {"Telea": lambda g, m: prefill(g, m, method="telea"), "biharmonic, 1/4 size": biharmonic,
              "biharmonic, full size": lambda g, m: prefill(g, m, method="biharmonic")}
    by_method = {"telea": "Telea", "biharmonic": "biharmonic, full size"}     # utils.prefill's names

    def recorded(config) -> str:        # the pre-fill a weights folder's inpainter was trained over
        return config.get("inference", {}).get("prefill", "telea")

    def inpainter(model, start):
        return lambda n: utils.inpaint(model, [gray[n]], [mask[n]], prefill_method=start)[0]

    net, config = utils.load_model(args.weights / "inpaint", "cpu")
    methods = {name: (lambda fill: lambda n: fill(gray[n], mask[n]))(f) for name, f in starts.items()}
    methods.update({f"inpainter over {name}": inpainter(net, f) for name, f in starts.items()})
    ours = f"inpainter over {by_method[recorded(config)]}"
    for folder in args.also:
        other, other_config = utils.load_model(folder / "inpaint", "cpu")
        methods[f"inpainter, {folder.name}"] = inpainter(other, recorded(other_config))
    for sigma in (4, 8, 16):
        methods[f"truth blurred, sigma {sigma}"] = (lambda s: lambda n: np.where(
            mask[n], cv2.GaussianBlur(truth[n], (0, 0), s), gray[n]))(sigma)
    filled, seconds = {}, {}
    for method, fn in methods.items():
        t = time.perf_counter()
        filled[method] = {n: fn(n) for n in tqdm(names, desc=method, leave=False)}
        seconds[method] = (time.perf_counter() - t) / len(names)
    if args.old_repo:
        old_out = args.out / "old_inpainter"
        t = time.perf_counter()
        if not all((old_out / n).is_file() for n in names):      # (kept between runs: the old version doesn't change)
            subprocess.run([sys.executable, "-c", OLD_RUNNER, str(args.old_repo / "weights"), str(args.data),
                            str(old_out), *names], check=True, cwd=args.old_repo,
                           env={"PYTHONPATH": str(args.old_repo), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2"})
        seconds["previous inpainter (RGB, 256 px, over Telea)"] = (time.perf_counter() - t) / len(names)
        filled["previous inpainter (RGB, 256 px, over Telea)"] = {n: read_png(old_out / n) for n in names}
    rows = []
    for method, f in filled.items():
        for n, p in zip(names, photos):
            value, _ = masked_ssim_term(np.repeat(truth[n][..., None], 3, -1), np.repeat(f[n][..., None], 3, -1),
                                        mask[n])
            rows.append({"method": method, "name": n, "photo": p, "masked_ssim": value})
    table = pd.DataFrame(rows)
    per_photo = table.groupby(["method", "photo"]).masked_ssim.mean().unstack(0)
    result = {}
    print(f"{len(names)} crops of {len(per_photo)} photos; masked SSIM of the hole's luminance (true mask), "
          f"paired over photos against '{args.baseline}'")
    for method in filled:
        mean, half = interval(per_photo[method])
        d_mean, d_half = interval(per_photo[method] - per_photo[args.baseline])
        result[method] = {"masked_ssim": mean, "ci95": half, "vs_baseline": d_mean, "vs_baseline_ci95": d_half,
                          "seconds_per_image": seconds[method]}
        print(f"  {method:40s} {mean:.4f} +- {half:.4f}   vs baseline {d_mean:+.4f} +- {d_half:.4f}   "
              f"{1000 * seconds[method]:.0f} ms/image")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "hole_benchmark.json").write_text(json.dumps({"crops": len(names), "photos": len(per_photo),
                                                              "baseline": args.baseline, "methods": result}, indent=1))
    table.to_csv(args.out / "hole_benchmark_crops.csv", index=False)     # other pairings without a rerun
    rows_ours = table[table.method == ours].reset_index(drop=True)
    order = list(rows_ours.masked_ssim.argsort())
    picks = order[:3] + order[-3:]
    from utils.training.plots import show_grid

    start = ours.removeprefix("inpainter over ")
    grid = []
    for i in picks:
        n = rows_ours.name[i]
        grid.append([gray[n], filled[start][n], filled[ours][n], truth[n]])
    fig = show_grid(grid, titles=["input", f"pre-fill ({start})", "inpainter", "truth"],
                    suptitle=f"worst 3 (top) and best 3 holes of the {ours}, held out")
    fig.savefig(args.out / "holes_worst_best.png", dpi=80)
    print(f"wrote {args.out / 'hole_benchmark.json'}, hole_benchmark_crops.csv and holes_worst_best.png")
    return 0


def time_largest(data: Path, names: list, count: int, threads: int, repeats: int = 5, seed: int = 0) -> int:
    """Prints the pre-fills' time per image (the fastest of `repeats` calls each) on `count` competition polygons
    whose box sides are both >= 440 px, each drawn on the next truth of `names`."""
    import utils
    from utils import prefill

    rng = np.random.default_rng(seed)
    config = utils.DamageConfig(min_bbox=440)
    holes = []
    for i in range(count):
        gray = utils.gray_of(utils.read_image(data / "test_gt" / names[i % len(names)], "RGB"))
        damage = utils.sample_damage(rng, config)
        holes.append((utils.apply_damage(gray, damage), damage.mask))
    pixels = [int(m.sum()) for _, m in holes]
    print(f"{count} polygons with both box sides >= 440 px: {min(pixels)}-{max(pixels)} hole pixels; "
          f"{threads} thread(s); the fastest of {repeats} calls each")
    for method in ("telea", "biharmonic"):
        ms = []
        for gray, mask in tqdm(holes, desc=method, leave=False):
            prefill(gray, mask, method)     # warm-up
            best = float("inf")
            for _ in range(repeats):
                t = time.perf_counter()
                prefill(gray, mask, method)
                best = min(best, time.perf_counter() - t)
            ms.append(1000 * best)
        print(f"  {method:<10} median {np.median(ms):6.1f} ms, 90th percentile {np.percentile(ms, 90):6.1f} ms, "
              f"largest {max(ms):6.1f} ms")
    return 0


def biharmonic(gray: np.ndarray, mask: np.ndarray, scale: int = 4) -> np.ndarray:
    """scikit-image's biharmonic inpainting solved at 1/scale size (a partly covered small pixel is unknown)."""
    from skimage.restoration import inpaint_biharmonic

    h, w = gray.shape
    small = cv2.resize(np.where(mask, 0, gray).astype(np.float32), (w // scale, h // scale),
                       interpolation=cv2.INTER_AREA)
    hole = cv2.resize(mask.astype(np.float32), (w // scale, h // scale), interpolation=cv2.INTER_AREA) > 0
    up = cv2.resize(inpaint_biharmonic(small.astype(np.float64) / 255.0, hole).astype(np.float32), (w, h),
                    interpolation=cv2.INTER_CUBIC)
    return np.where(mask, np.clip(up * 255.0, 0, 255).round().astype(np.uint8), gray)


def read_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


if __name__ == "__main__":
    sys.exit(main())
