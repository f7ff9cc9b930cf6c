"""Mixed precision by the card's capability (utils.runtime.choose_precision, the one function that reads the
capability being `cuda_capability`), and the fp16 path that T4s and V100s take, run on the CPU (PyTorch runs fp16
autocast and torch.amp.GradScaler there): training steps of each stage, an overflowing step skipped and the scale
recovering, the NaN guards, an exact resume of the gradient scale, inference in fp16 and bf16."""
import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

import utils
import utils.core.runtime
from utils.core.checkpoints import load_train_state

# small working sizes: fp16 convolutions are slow on the CPU. The encoders' nets need 64 px: at 32 px their deepest
# BatchNorm normalises a single pixel and their fp16 gradients overflow at any scale
SIZES = {"mask": 64, "color": 64, "inpaint": 32}


def play_card(monkeypatch, capability):
    """Every device is a CUDA card of this compute capability, as far as the precision rule can tell."""
    monkeypatch.setattr(utils.runtime, "cuda_capability", lambda device: capability)


@pytest.mark.parametrize("capability,precision", [((9, 0), "bf16"), ((8, 0), "bf16"), ((8, 6), "bf16"),
                                                  ((7, 5), "fp16"), ((7, 0), "fp16"), ((6, 0), "off"), (None, "off")],
                         ids=["H100", "A100", "RTX30", "T4", "V100", "P100", "CPU"])
def test_auto_precision_follows_the_compute_capability(monkeypatch, capability, precision):
    play_card(monkeypatch, capability)
    assert utils.choose_precision(torch.device("cuda"), "auto") == precision
    assert utils.choose_precision("cuda", None) == precision            # None is 'auto'
    # the stages and the Restorer read the card through the same rule (here a CPU device plays the card)
    stage = utils.MaskStage(image_size=64, pretrained="none")
    assert stage.amp == "auto" and stage.precision == precision
    assert stage.scaler.is_enabled() == (precision == "fp16")           # a gradient scaler for fp16 only
    assert utils.Restorer(torch.nn.Linear(1, 1), None, None).amp == precision
    assert utils.Restorer(torch.nn.Linear(1, 1), None, None, amp="off").amp == "off"


def test_the_cpu_gets_fp32_and_explicit_settings_are_kept(monkeypatch):
    assert utils.choose_precision(torch.device("cpu")) == "off"
    for amp in ("bf16", "fp16", "off"):
        assert utils.choose_precision("cpu", amp) == amp
    assert utils.choose_precision("cpu", False) == "off"
    with pytest.raises(ValueError, match=r"amp must be one of \('auto', 'bf16', 'fp16', 'off'\), got 'fp8'"):
        utils.choose_precision("cpu", "fp8")
    play_card(monkeypatch, (7, 5))
    with pytest.warns(RuntimeWarning, match="compute capability 7.5, which has no native bf16"):
        assert utils.choose_precision("cuda", "bf16") == "bf16"


def small_batch(sample_data, stage_name, n=2, seed=0):
    table = utils.load_train_table(sample_data)
    size = SIZES[stage_name]
    ds = utils.SyntheticDamageDataset(table["gt_image_path"], size=size, seed=seed, augment=False)
    if stage_name == "inpaint":
        ds = utils.InpaintDataset(ds, size)
    return ds, default_collate([ds[i] for i in range(n)])


STAGES = {
    "mask": lambda **kw: utils.MaskStage(image_size=SIZES["mask"], pretrained="none", **kw),
    "color": lambda **kw: utils.ColorStage(image_size=SIZES["color"], pretrained="none", **kw),
    "inpaint": lambda **kw: utils.InpaintStage(image_size=SIZES["inpaint"], **kw),
    "inpaint-gan": lambda **kw: utils.InpaintStage(loss="l1+mssim+gan", image_size=SIZES["inpaint"], **kw),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mask", "color", "inpaint-gan"])
def test_fp16_training_steps_of_each_stage(sample_data, tmp_path, name):
    torch.manual_seed(0)
    stage = STAGES[name](amp="fp16")
    assert stage.precision == "fp16" and stage.scaler.is_enabled()
    ds, _ = small_batch(sample_data, stage.name, n=6)
    history = utils.fit(stage, ds, 1, tmp_path, batch_size=2, steps_per_epoch=3, progress=False)
    last = history[-1]
    assert last["precision"] == "fp16" and last["skipped_steps"] == 0 and last["images"] == 6
    assert all(np.isfinite(v) for k, v in last.items() if k.startswith("train_"))
    # each overflow halved the scale (and no growth yet: 2000 clean steps first); at least one step trained
    assert stage.scaler.get_scale() == 65536.0 * 0.5 ** last["overflow_steps"] and last["overflow_steps"] < 3
    assert load_train_state(tmp_path / f"{stage.name}.train_state.pt")["scaler"]["scale"] == stage.scaler.get_scale()


@pytest.mark.slow
def test_an_overflowing_step_is_skipped_and_the_scale_recovers(sample_data):
    """A step whose fp16 gradients overflow changes no weight and no optimizer state and halves the scale; the
    clean steps after it train, and the scale grows back (after every clean step here: growth interval 1)."""
    torch.manual_seed(0)
    stage = STAGES["inpaint"](amp="fp16")
    stage.scaler.set_growth_interval(1)
    _, batch = small_batch(sample_data, "inpaint")
    stage.train_mode()
    opt, steps = stage.opts["g"], []
    for _ in range(12):
        params = [p.detach().clone() for p in stage.net.parameters()]
        adam_steps = [float(s["step"]) for s in opt.state.values()]
        scale, overflows = stage.scaler.get_scale(), stage.overflow_steps
        logs = stage.train_step(batch)
        assert logs is not None and np.isfinite(logs["loss"])        # the loss itself is finite: not a NaN skip
        moved = any(not torch.equal(a, b) for a, b in zip(params, stage.net.parameters()))
        if stage.overflow_steps > overflows:                          # skipped by the scaler
            assert not moved and [float(s["step"]) for s in opt.state.values()] == adam_steps
            assert stage.scaler.get_scale() == scale / 2
            steps.append("overflow")
        else:
            assert moved and stage.scaler.get_scale() == scale * 2
            steps.append("step")
        if steps[-2:] == ["overflow", "step"]:
            break
    assert steps[-2:] == ["overflow", "step"], steps


@pytest.mark.slow
def test_nan_guards_hold_in_fp16(sample_data, tmp_path):
    torch.manual_seed(0)
    stage = STAGES["inpaint"](amp="fp16")
    ds, good = small_batch(sample_data, "inpaint")
    stage.train_mode()
    bad = {k: v.clone() for k, v in good.items()}
    bad["image"][:] = float("nan")
    before = {k: v.clone() for k, v in stage.net.state_dict().items()}
    assert stage.train_step(bad) is None                                # a non-finite input: no forward pass
    assert all(torch.equal(before[k], v) for k, v in stage.net.state_dict().items())
    stage.loss.hole_w = float("inf")                                    # a non-finite loss: no step
    params = {k: v.clone() for k, v in stage.net.named_parameters()}
    assert stage.train_step(good) is None
    assert all(torch.equal(params[k], v) for k, v in stage.net.named_parameters())
    assert stage.scaler.get_scale() == 65536.0 and stage.overflow_steps == 0   # not taken for an overflow
    stage.loss.hole_w = 6.0
    assert stage.train_step(good) is not None                           # and training goes on

    class NaNs(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            item = ds[i % len(ds)]
            item["image"] = torch.full_like(item["image"], float("nan"))
            return item

    with pytest.raises(FloatingPointError, match="non-finite"):
        utils.fit(stage, NaNs(), 1, tmp_path, batch_size=2, progress=False)


@pytest.mark.slow
def test_a_resumed_fp16_run_continues_exactly(sample_data, tmp_path):
    """Two epochs straight, and one epoch then a resumed second: the same weights and the same gradient scale. The
    checkpoint's scale is not the initial one (a first step overflowed), so a resume that started the scaler afresh
    would differ."""
    from safetensors.torch import load_file

    ds, _ = small_batch(sample_data, "inpaint", n=4)

    def run(ckpt, epochs):
        torch.manual_seed(0)
        stage = STAGES["inpaint"](amp="fp16")
        history = utils.fit(stage, ds, epochs, ckpt, batch_size=2, steps_per_epoch=2, progress=False)
        return stage, history

    straight, h_straight = run(tmp_path / "straight", 2)
    first, _ = run(tmp_path / "resumed", 1)
    assert first.scaler.get_scale() < 65536.0
    resumed, h_resumed = run(tmp_path / "resumed", 2)
    assert h_resumed[1]["train_loss"] == h_straight[1]["train_loss"]
    assert h_resumed[1]["overflow_steps"] == h_straight[1]["overflow_steps"]
    assert resumed.scaler.state_dict() == straight.scaler.state_dict()
    a = load_file(tmp_path / "straight" / "inpaint.safetensors")
    b = load_file(tmp_path / "resumed" / "inpaint.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_the_fourier_blocks_run_under_autocast(precision):
    """The inpainter's Fourier units transform in fp32 under autocast: there is no bf16 complex type, and fp16
    FFTs run only on CUDA and only at power-of-two sizes (72 x 104 is neither)."""
    torch.manual_seed(0)
    net = utils.InpaintNet().eval()
    x, m = torch.rand(1, 1, 72, 104), torch.zeros(1, 1, 72, 104)
    m[..., 20:50, 30:70] = 1
    with torch.no_grad():
        ref = net(x, m)
        with utils.autocast(torch.device("cpu"), precision):
            out = net(x, m).float()
    assert out.shape == ref.shape and torch.isfinite(out).all()
    assert (out - ref).abs().max() < 0.05


@pytest.mark.slow
def test_restorer_in_fp16_keeps_the_luminance_and_is_close_to_fp32(sample_data, tiny_weights):
    grays = [utils.read_image(sample_data / "test_input" / f"TEST_00{i}.png", "L") for i in range(2)]
    masks = [utils.read_image(sample_data / "test_mask" / f"TEST_00{i}.png", "L") > 0 for i in range(2)]
    fp32 = utils.Restorer.from_dir(tiny_weights, device="cpu")
    fp16 = utils.Restorer.from_dir(tiny_weights, device="cpu", amp="fp16")
    assert fp32.amp == "off" and fp16.amp == "fp16"
    for a, b, g, m in zip(fp32.restore_batch(grays, masks), fp16.restore_batch(grays, masks), grays, masks):
        assert np.array_equal(utils.gray_of(b.restored)[~m], g[~m])
        assert np.abs(a.restored.astype(int) - b.restored.astype(int)).mean() < 3


@pytest.fixture
def fresh_accelerate():
    """accelerate's process-wide state, made afresh for this test and after it (it keeps the first Accelerator's
    mixed precision for the life of the process)."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.mark.slow
def test_the_launcher_gives_accelerate_and_the_stage_one_precision(sample_data, tmp_path, monkeypatch,
                                                                     fresh_accelerate):
    """utils.distributed.train (what tools/train.py and accelerate's launchers run in each process) resolves amp on
    the process's device and passes that one precision to accelerate's mixed_precision and to the stage."""
    play_card(monkeypatch, (7, 5))        # a T4
    config = utils.InpaintConfig(epochs=1, steps_per_epoch=1, batch_size=2, num_workers=0, image_size=32, val_count=1)
    out = utils.distributed.train(config, data_dir=sample_data, ckpt_dir=tmp_path, validate=False, cpu=True,
                                  progress=False)
    assert out["accelerator"].mixed_precision == "fp16" and out["stage"].precision == "fp16"
    assert out["history"][-1]["precision"] == "fp16"
    assert "scaler" in load_train_state(tmp_path / "inpaint.train_state.pt")
