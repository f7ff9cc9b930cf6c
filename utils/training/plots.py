"""Small plotting helpers shared by the notebooks."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def show_grid(rows, titles=None, size: float = 2.6, suptitle: str | None = None):
    """rows: list of lists of images (HxW gray, HxWx3 RGB or bool masks)."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(size * n_cols, size * n_rows), squeeze=False)
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i][j]
            ax.axis("off")
            if j < len(row) and row[j] is not None:
                img = row[j]
                ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1 if img.dtype == bool else 255)
                if titles is not None:
                    t = titles[i][j] if isinstance(titles[0], (list, tuple)) else titles[j]
                    ax.set_title(t, fontsize=8)
    if suptitle:        # a fixed 0.05 inch from the top, whatever the figure's height; tight_layout makes room
        fig.suptitle(suptitle, y=1 - 0.05 / fig.get_figheight(), va="top")
    fig.tight_layout()
    return fig


def worst_and_best(values, worst: int, best: int) -> list[int]:
    """Indices of the `worst` lowest then the `best` highest values, each index once (a small set has fewer than
    worst + best items: then every item is shown once, lowest first)."""
    order = [int(i) for i in np.argsort(np.asarray(values), kind="stable")]
    low = order[:worst]
    high = [i for i in order[::-1][:best] if i not in low][::-1]
    return low + high


def overlay_mask(gray: np.ndarray, pred: np.ndarray, true: np.ndarray | None = None) -> np.ndarray:
    """Gray image with the predicted mask in red and (when given) missed true pixels in blue."""
    rgb = np.repeat(gray[..., None], 3, axis=-1).astype(np.float32)
    rgb[pred] = 0.5 * rgb[pred] + 0.5 * np.array([255, 0, 0])
    if true is not None:
        missed = true & ~pred
        rgb[missed] = np.array([0, 80, 255])
    return rgb.clip(0, 255).astype(np.uint8)


def plot_history(history: list[dict], keys, title: str = ""):
    """Curves of per-epoch (or per-step) records."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k in keys:
        xs = [h.get("epoch", i) for i, h in enumerate(history) if k in h]
        ys = [h[k] for h in history if k in h]
        if ys:
            ax.plot(xs, ys, marker="o", label=k)
    ax.set_xlabel("epoch")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_hole_colour(preds: dict, truths, masks, path=None, width: int = 16):
    """The hole-colour figure: for each image, the mean chroma (Cb, Cr) of a `width` px ring around the hole (dot)
    and of the hole itself (cross, joined to its ring), for the truth and for each method in `preds`
    ({name: list of RGB images}); right, the hole-to-ring distance per image of each method against the truth's
    (on the diagonal: a hole that stands out exactly as much as the true one does). Saved to `path` if given."""
    from ..inference.chroma import hole_ring_chroma

    sets = {"truth": list(truths), **{k: list(v) for k, v in preds.items()}}
    colours = dict(zip(sets, ["black", "tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange"]))
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 5))
    dist = {}
    for name, images in sets.items():
        pairs = [hole_ring_chroma(im, m, width) for im, m in zip(images, masks)]
        hole, ring = np.array([h for h, _ in pairs]), np.array([r for _, r in pairs])
        dist[name] = np.linalg.norm(hole - ring, axis=1)
        for (hx, hy), (rx, ry) in zip(hole, ring):
            ax.plot([rx, hx], [ry, hy], color=colours[name], lw=0.7, alpha=0.6)
        ax.scatter(ring[:, 0], ring[:, 1], s=12, color=colours[name], marker="o", alpha=0.7)
        ax.scatter(hole[:, 0], hole[:, 1], s=28, color=colours[name], marker="x",
                   label=f"{name} (hole-ring {np.nanmean(dist[name]):.2f})")
    ax.axhline(0, color="0.8", lw=0.5)
    ax.axvline(0, color="0.8", lw=0.5)
    ax.set(xlabel="Cb (blue +)", ylabel="Cr (red +)", title="mean chroma: ring (dot) -> hole (cross)")
    ax.legend(fontsize=8)
    top = max(float(np.nanmax(d)) for d in dist.values()) * 1.05 + 1e-6
    for name, d in dist.items():
        if name != "truth":
            bx.scatter(dist["truth"], d, s=14, color=colours[name], label=name)
    bx.plot([0, top], [0, top], color="0.5", lw=0.8, ls="--")
    bx.set(xlim=(0, top), ylim=(0, top), xlabel="truth: hole-ring chroma distance",
           ylabel="ours: hole-ring chroma distance", title="how much the hole's colour stands out, per image")
    bx.legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        from ..core.files import atomic_path

        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    return fig


__all__ = ["overlay_mask", "plot_history", "plot_hole_colour", "show_grid", "worst_and_best"]
