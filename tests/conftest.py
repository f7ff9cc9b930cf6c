import contextlib
import io
import os
import runpy
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Tests default to CPU, as in timm; IMAGE_RESTORE_TEST_CUDA=1 keeps the GPUs visible for the CUDA tests
# (`IMAGE_RESTORE_TEST_CUDA=1 pytest tests/test_cuda.py` on a GPU machine).
if os.environ.get("IMAGE_RESTORE_TEST_CUDA") != "1":
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# With pytest-xdist (`make test`: two workers on two cores) each worker, and every process it starts (notebook
# kernels, restore.py, the app), computes on one thread: two workers of two threads each would oversubscribe the cores
if os.environ.get("PYTEST_XDIST_WORKER"):
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


requires_cuda = pytest.mark.skipif(not cuda_available(), reason="needs CUDA: run on a GPU machine with "
                                   "IMAGE_RESTORE_TEST_CUDA=1 (the tests hide GPUs otherwise)")


@dataclass
class CliRun:
    """What a command printed and returned, as subprocess.run(..., capture_output=True, text=True) gives it."""
    returncode: int
    stdout: str
    stderr: str


def run_cli(script, *args) -> CliRun:
    """Run one of the project's command-line scripts (restore.py, benchmark.py, tools/*.py) as `python script
    args...` would, inside this process: its `main(argv)` with stdout and stderr captured, an argparse exit taken
    as the exit code, and warnings printed to stderr under Python's default filters, as a fresh interpreter would.
    It saves each call the 5-10 s of interpreter start-up and imports on 2 cores; the tests that need a real
    process (signals, imports, the network) still start one."""
    main = runpy.run_path(str(ROOT / script), run_name="cli_under_test")["main"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.resetwarnings()                 # the interpreter's defaults: DeprecationWarning only in __main__
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:                 # argparse errors (2) and --help (0)
            code = e.code if isinstance(e.code, int) or e.code is None else 1
            if isinstance(e.code, str):
                print(e.code, file=err)
    return CliRun(code or 0, out.getvalue(), err.getvalue())


@pytest.fixture
def no_project_env(monkeypatch):
    """None of the project's IMAGE_RESTORE_* variables set for this test, as on a user's fresh shell."""
    for var in [k for k in os.environ if k.startswith("IMAGE_RESTORE_")]:
        monkeypatch.delenv(var)


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory):
    """A tiny dataset in the competition layout built from the bundled photos."""
    import utils

    out = tmp_path_factory.mktemp("data")
    utils.build_sample_dataset(out, n_train=12, n_test=4, seed=1, overwrite=True)
    return out


def make_tiny_weights(out_dir, size: int = 128):
    """Untrained (random-init) checkpoints of the three stages, as notebooks 02-04 would write them."""
    import torch

    import utils
    from utils.core.models import model_config

    torch.manual_seed(0)
    nets = {"mask": ("MaskNet", {}), "color": ("ColorizationNet", {"head": "regression"}),
            "inpaint": ("InpaintNet", {})}
    for stem, (arch, kwargs) in nets.items():
        net = utils.models.MODELS[arch](**kwargs)
        inference = {"size": size}
        if stem == "mask":
            inference["refine"] = utils.RefineConfig().to_dict()
        utils.save_model(net, {**model_config(arch, **kwargs), "stage": stem, "inference": inference}, out_dir / stem)
    return out_dir


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    return make_tiny_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="session")
def own_data(sample_data, tmp_path_factory):
    """The sample dataset's images in another folder, without its manifest: not the sample dataset (as the
    competition's data, or a copy of a dataset moved elsewhere)."""
    import shutil

    out = tmp_path_factory.mktemp("own") / "data"
    shutil.copytree(sample_data, out)
    (out / "manifest.csv").unlink()
    return out
