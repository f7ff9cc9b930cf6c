"""Fixtures of the research tools' tests (`pytest research`, also run by `make test`). Not a conftest.py: two
conftest modules (this and tests/') would replace each other as `conftest` when one pytest run collects both
folders; the tests import what they use from here."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory):
    """A tiny dataset in the competition layout built from the bundled photos (as tests/conftest.py's)."""
    import utils

    out = tmp_path_factory.mktemp("data")
    utils.build_sample_dataset(out, n_train=12, n_test=4, seed=1, overwrite=True)
    return out


def load_tool(name: str):
    """research/<name>.py as a module (research/ is a folder of scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "research" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
