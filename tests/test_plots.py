"""The notebooks' plot helpers (utils.plots)."""
import matplotlib.pyplot as plt
import numpy as np
import pytest

from utils.training.plots import show_grid, worst_and_best


def test_worst_and_best_shows_each_item_once():
    v = [0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8]
    assert worst_and_best(v, 3, 2) == [1, 5, 3, 6, 2]          # lowest first, then the best two (ascending)
    assert worst_and_best([0.4, 0.2, 0.6], 4, 2) == [1, 0, 2]  # fewer than 6 values: each once, no repeats


@pytest.mark.parametrize("rows", [1, 6, 14])       # 6 x 4: the hole benchmark's figure
def test_show_grid_keeps_the_suptitle_clear_of_the_panel_titles(rows):
    images = [[np.zeros((64, 64), np.uint8)] * 4] * rows
    fig = show_grid(images, titles=["input", "pre-fill", "inpainter", "truth"], suptitle="a title over the grid")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    top_of_titles = max(ax.title.get_window_extent(renderer).y1 for ax in fig.axes)
    (suptitle,) = fig.texts
    assert suptitle.get_window_extent(renderer).y0 > top_of_titles
    plt.close(fig)
