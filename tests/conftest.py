import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Tests default to CPU, as in timm; IMAGE_RESTORE_TEST_CUDA=1 keeps the GPUs visible for the CUDA tests
# (`IMAGE_RESTORE_TEST_CUDA=1 pytest tests/test_cuda.py` on a GPU machine).
if os.environ.get("IMAGE_RESTORE_TEST_CUDA") != "1":
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


requires_cuda = pytest.mark.skipif(not cuda_available(), reason="needs CUDA: run on a GPU machine with "
                                   "IMAGE_RESTORE_TEST_CUDA=1 (the tests hide GPUs otherwise)")


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
    from utils.models import model_config

    torch.manual_seed(0)
    nets = {"mask": ("MaskNet", utils.MaskNet()), "color": ("ColorizationNet", utils.ColorizationNet()),
            "inpaint": ("InpaintNet", utils.InpaintNet())}
    for stem, (arch, net) in nets.items():
        inference = {"size": size}
        if stem == "mask":
            inference["refine"] = utils.RefineConfig().to_dict()
        utils.save_model(net, {**model_config(arch), "stage": stem, "inference": inference}, out_dir / stem)
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
