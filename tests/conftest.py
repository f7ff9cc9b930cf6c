import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # tests default to CPU, as in timm


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory):
    """A tiny dataset in the competition layout built from the bundled photos."""
    import utils

    out = tmp_path_factory.mktemp("data")
    utils.build_sample_dataset(out, n_train=12, n_test=4, seed=1, overwrite=True)
    return out
