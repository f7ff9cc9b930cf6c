"""The notebooks' plot helpers (utils.plots)."""
from utils.training.plots import worst_and_best


def test_worst_and_best_shows_each_item_once():
    v = [0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8]
    assert worst_and_best(v, 3, 2) == [1, 5, 3, 6, 2]          # lowest first, then the best two (ascending)
    assert worst_and_best([0.4, 0.2, 0.6], 4, 2) == [1, 0, 2]  # fewer than 6 values: each once, no repeats
