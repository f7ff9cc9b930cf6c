"""The ONNX Runtime backend: export, parity with PyTorch within the stated tolerance, verified loading."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import utils

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
from utils import onnx_backend  # noqa: E402
from utils.pipeline import _resize_stack  # noqa: E402
from conftest import run_cli  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "weights"


@pytest.fixture(scope="module")
def shipped_copy(tmp_path_factory):
    """The shipped weights copied out, so that the ONNX cache is written under tmp, not into the repo."""
    out = tmp_path_factory.mktemp("shipped")
    for p in WEIGHTS.glob("*"):
        if p.is_file():
            shutil.copy(p, out / p.name)
    return out


def _net_inputs(sample_data, size):
    grays = [utils.read_image(p, "L") for p in sorted((sample_data / "test_input").glob("*.png"))]
    masks = [utils.read_image(sample_data / "test_mask" / p.name, "L") > 0
             for p in sorted((sample_data / "test_input").glob("*.png"))]
    g = _resize_stack(grays, size).astype(np.float32)[:, None] / 255.0
    m = _resize_stack([x.astype(np.float32) for x in masks], size)[:, None]
    return {"mask": (g,), "color": (g, m), "inpaint": (g, m)}


def test_networks_match_pytorch_within_tolerance(shipped_copy, sample_data):
    onnx_nets = onnx_backend.load_onnx_nets(shipped_copy)
    assert (shipped_copy / "onnx" / "manifest.json").is_file()
    inputs = _net_inputs(sample_data, 256)
    for stage, tol in onnx_backend.ONNX_TOLERANCE.items():
        net, _ = utils.load_model(shipped_copy / stage)
        with torch.inference_mode():
            want = net(*(torch.from_numpy(x) for x in inputs[stage])).numpy()
        got = onnx_nets[stage](*inputs[stage]).numpy()
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= tol, (stage, np.abs(got - want).max())
    # a batch size and image size other than the export's (dynamic axes)
    x = inputs["mask"][0][:1, :, :128, :128]
    net, _ = utils.load_model(shipped_copy / "mask")
    with torch.inference_mode():
        assert np.abs(onnx_nets["mask"](x).numpy() - net(torch.from_numpy(x)).numpy()).max() <= onnx_backend.ONNX_TOLERANCE["mask"]


def test_restorations_match_pytorch(shipped_copy, sample_data):
    """Whole pipeline: the same masks; colour within 1 level; the restored images differ in under 1% of
    pixels (float rounding in the networks flips a few uint8 roundings). The hue remap is rank-based, so a
    pixel whose chroma moves across a quantile edge of its histogram gets another hue: such jumps stay under
    0.2% of the pixels and the mean difference under 0.1 level."""
    grays = [utils.read_image(p, "L") for p in sorted((sample_data / "test_input").glob("*.png"))]
    ref = utils.Restorer.from_dir(shipped_copy, device="cpu").restore_batch(grays)
    ort = utils.Restorer.from_dir(shipped_copy, backend="onnx").restore_batch(grays)
    for a, b in zip(ref, ort):
        assert np.array_equal(a.mask, b.mask)
        assert np.abs(a.colorized.astype(int) - b.colorized).max() <= 1
        diff = np.abs(a.restored.astype(int) - b.restored).max(-1)
        assert (diff > 0).mean() < 0.01 and (diff > 10).mean() < 0.002 and diff.mean() < 0.1, \
            ((diff > 0).mean(), (diff > 10).mean(), diff.mean())
        assert np.array_equal(utils.gray_of(b.restored)[~b.mask], utils.gray_of(a.restored)[~a.mask])


def test_corrupt_onnx_file_is_refused(tiny_weights, tmp_path):
    weights = tmp_path / "w"
    shutil.copytree(tiny_weights, weights)
    cache = onnx_backend.export_onnx(weights)
    assert onnx_backend.is_current(weights)
    good = (cache / "color.onnx").read_bytes()
    data = bytearray(good)
    data[len(data) // 2] ^= 1
    (cache / "color.onnx").write_bytes(bytes(data))
    with pytest.raises(utils.ChecksumError, match="color.onnx"):
        utils.Restorer.from_dir(weights, backend="onnx")
    (cache / "color.onnx").write_bytes(good)
    utils.Restorer.from_dir(weights, backend="onnx")
    (cache / "mask.onnx").unlink()
    with pytest.raises(utils.ChecksumError, match="mask.onnx"):
        onnx_backend.load_onnx_nets(weights)


def test_stale_export_is_redone_when_the_weights_change(tiny_weights, tmp_path):
    weights = tmp_path / "w"
    shutil.copytree(tiny_weights, weights)
    onnx_backend.export_onnx(weights)
    before = (weights / "onnx" / "mask.onnx").read_bytes()
    net, cfg = utils.load_model(weights / "mask")
    with torch.no_grad():
        net.unet.head.bias.add_(1.0)
    utils.save_model(net, cfg, weights / "mask")
    assert not onnx_backend.is_current(weights)
    with pytest.raises(FileNotFoundError, match="no ONNX export"):
        onnx_backend.load_onnx_nets(weights, export=False)
    nets = onnx_backend.load_onnx_nets(weights)
    assert onnx_backend.is_current(weights) and (weights / "onnx" / "mask.onnx").read_bytes() != before
    x = np.zeros((1, 1, 64, 64), np.float32)
    with torch.inference_mode():
        assert np.allclose(nets["mask"](x).numpy(), net(torch.from_numpy(x)).numpy(), atol=1e-4)


def test_onnx_backend_refuses_cuda(tiny_weights):
    with pytest.raises(ValueError, match="CPU"):
        utils.Restorer.from_dir(tiny_weights, device="cuda", backend="onnx")
    with pytest.raises(ValueError, match="backend"):
        utils.Restorer.from_dir(tiny_weights, backend="tensorrt")


def test_restore_cli_onnx_backend(sample_data, tiny_weights, tmp_path):
    weights = tmp_path / "w"
    shutil.copytree(tiny_weights, weights)
    out_t, out_o = tmp_path / "torch", tmp_path / "onnx"
    for backend, out in (("torch", out_t), ("onnx", out_o)):
        proc = run_cli("restore.py", sample_data / "test_input", out, "--weights", weights, "--backend", backend)
        assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in out_t.glob("*.png"))
    assert names and names == sorted(p.name for p in out_o.glob("*.png"))
    for n in names:
        a, b = utils.read_image(out_t / n, "RGB"), utils.read_image(out_o / n, "RGB")
        assert (np.abs(a.astype(int) - b).max(-1) > 0).mean() < 0.01


def test_app_onnx_backend(sample_data, tiny_weights, tmp_path):
    """The app restores through the ONNX backend; --backend / $IMAGE_RESTORE_BACKEND reach the loader (a
    corrupt ONNX file stops the app before it serves, naming the file)."""
    import app

    weights = tmp_path / "w"
    shutil.copytree(tiny_weights, weights)
    restorer = utils.Restorer.from_dir(weights, backend="onnx")
    gray = utils.read_image(sample_data / "test_input" / "TEST_000.png", "L")
    overlay, colorized, restored, out, md = app.restore_array(restorer, gray)
    assert restored.shape == (512, 512, 3) and Path(out).is_file() and "detected hole" in md
    (weights / "onnx" / "mask.onnx").write_bytes(b"not the exported file")
    for args, env in ((["--backend", "onnx"], {}), ([], {"IMAGE_RESTORE_BACKEND": "onnx"})):
        proc = subprocess.run([sys.executable, str(ROOT / "app.py"), "--weights", str(weights), "--port", "1", *args],
                              capture_output=True, text=True, env={**os.environ, **env}, timeout=300)
        assert proc.returncode == 2 and "mask.onnx" in proc.stderr, proc.stderr
