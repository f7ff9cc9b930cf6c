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
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


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
