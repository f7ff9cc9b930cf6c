"""The suite on CUDA: the same restorations as on CPU, training steps in the card's precision and in fp16 with the
gradient scaler, checkpoints that load on CPU. Skipped without CUDA (and unless IMAGE_RESTORE_TEST_CUDA=1, see
conftest.py); tools/gpu_check.py runs them."""
import numpy as np
import pytest
import torch
from conftest import requires_cuda

import utils

pytestmark = requires_cuda


@pytest.fixture
def fp32_exact():
    """Plain fp32 convolutions (no TF32) so that CUDA and CPU agree to float rounding."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_auto_device_is_cuda_and_the_precision_follows_the_card():
    assert utils.pick_device("auto").type == "cuda"
    major, _ = torch.cuda.get_device_capability()
    assert utils.choose_precision(torch.device("cuda")) == ("bf16" if major >= 8 else "fp16" if major >= 7 else "off")


def test_restorer_on_cuda_equals_cpu(sample_data, tiny_weights, fp32_exact):
    grays = [utils.read_image(sample_data / "test_input" / f"TEST_00{i}.png", "L") for i in range(3)]
    masks = [utils.read_image(sample_data / "test_mask" / f"TEST_00{i}.png", "L") > 0 for i in range(3)]
    cpu = utils.Restorer.from_dir(tiny_weights, device="cpu")
    gpu = utils.Restorer.from_dir(tiny_weights, device="cuda", amp=False)
    assert next(gpu.mask_net.parameters()).is_cuda
    p_cpu = utils.pipeline.mask_probability(cpu.mask_net, grays, cpu.sizes["mask"])
    p_gpu = utils.pipeline.mask_probability(gpu.mask_net, grays, gpu.sizes["mask"])
    assert np.abs(p_cpu - p_gpu).max() < 1e-3
    for a, b, g, m in zip(cpu.restore_batch(grays, masks), gpu.restore_batch(grays, masks), grays, masks):
        diff = np.abs(a.restored.astype(int) - b.restored.astype(int))
        assert diff.max() <= 2 and diff.mean() < 0.05       # uint8 rounding of nearly equal floats
        assert np.array_equal(utils.gray_of(b.restored)[~m], g[~m])
    # the card's precision (amp='auto', the default), and fp16 (a T4's): same luminance guarantee, close colours
    for amp in ("auto", "fp16"):
        mixed = utils.Restorer.from_dir(tiny_weights, device="cuda", amp=amp)
        assert mixed.amp == utils.choose_precision(torch.device("cuda"), amp)
        for a, b, g, m in zip(cpu.restore_batch(grays, masks), mixed.restore_batch(grays, masks), grays, masks):
            assert np.array_equal(utils.gray_of(b.restored)[~m], g[~m])
            assert np.abs(a.restored.astype(int) - b.restored.astype(int)).mean() < 3


@pytest.mark.parametrize("make_stage", [
    lambda: utils.MaskStage(image_size=128, device="cuda"),
    lambda: utils.ColorStage(loss="perceptual+l1", image_size=128, device="cuda"),
    lambda: utils.InpaintStage(image_size=128, device="cuda"),
    lambda: utils.MaskStage(image_size=128, device="cuda", amp="fp16"),
    lambda: utils.InpaintStage(loss="l1+mssim+gan", image_size=128, device="cuda", amp="fp16"),
], ids=["mask", "color", "inpaint", "mask-fp16", "inpaint-gan-fp16"])
def test_training_steps_on_cuda(sample_data, tmp_path, make_stage):
    run = utils.prepare_run(sample_data, "cuda")
    base, _ = utils.train_val_datasets(run["train_paths"], run["val_paths"], 128, train_source="both",
                             train_table=run["train_table"])
    torch.manual_seed(0)
    stage = make_stage()
    ds = utils.InpaintDataset(base, 128) if stage.name == "inpaint" else base
    before = {k: v.detach().cpu().clone() for k, v in stage.net.state_dict().items()}
    hist = utils.fit(stage, ds, 1, tmp_path, batch_size=4, steps_per_epoch=3, progress=False)
    assert hist[-1]["images"] == 12 and hist[-1]["skipped_steps"] == 0
    assert all(np.isfinite(v) for k, v in hist[-1].items() if k.startswith("train_"))
    net, cfg = utils.load_model(tmp_path / stage.name, "cpu")      # a CUDA checkpoint loads on CPU
    after = net.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())
    assert hist[-1]["precision"] == stage.precision
    resumed = make_stage()
    assert len(utils.fit(resumed, ds, 2, tmp_path, batch_size=4, steps_per_epoch=1, progress=False)) == 2
    if stage.precision == "fp16":         # the gradient scale went on from the checkpoint's
        assert resumed.scaler.is_enabled() and "scaler" in utils.checkpoints.load_train_state(
            tmp_path / f"{stage.name}.train_state.pt")
