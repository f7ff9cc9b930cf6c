import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

import utils
from utils.core.models import PretrainedWeightsError, create_encoder, offline_lite_state_dict


def batch_of(sample_data, n=2, size=128, seed=0):
    table = utils.load_train_table(sample_data)
    ds = utils.SyntheticDamageDataset(table["gt_image_path"], size=size, seed=seed, augment=False)
    return ds, default_collate([ds[i] for i in range(n)])


@pytest.mark.parametrize("cls,args,out", [
    (utils.MaskNet, [(2, 1)], 1),
    (lambda: utils.ColorizationNet(head="regression"), [(2, 1), (2, 1)], 2),
    (utils.InpaintNet, [(2, 1), (2, 1)], 1),
], ids=["mask", "colour", "inpaint"])
@pytest.mark.slow
def test_shapes_on_cpu(cls, args, out):
    net = cls().eval()
    with torch.no_grad():
        y = net(*[torch.rand(b, c, 96, 96) for b, c in args])
    assert y.shape == (2, out, 96, 96)
    assert torch.isfinite(y).all()


def test_classification_colour_head():
    net = utils.ColorizationNet(head="classes", bins=7, span=0.3).eval()
    with torch.no_grad():
        cbcr, logits = net(torch.rand(2, 1, 64, 64), torch.zeros(2, 1, 64, 64), return_logits=True)
    assert logits.shape == (2, 49, 64, 64) and cbcr.shape == (2, 2, 64, 64)
    assert float((cbcr - 0.5).abs().max()) <= 0.3 + 1e-6          # the annealed mean stays within the bins
    # a confident logit on one bin decodes to (almost) that bin's chroma
    peaked = torch.full((1, 49, 1, 1), -20.0)
    peaked[0, 48] = 20.0
    assert torch.allclose(net.decode(peaked)[0, :, 0, 0], torch.tensor([0.8, 0.8]), atol=1e-4)
    with pytest.raises(ValueError, match="head"):
        utils.ColorizationNet(head="nope")
    with pytest.raises(ValueError, match="bin centres"):
        utils.ColorLoss("classify")


def test_discriminator_shape():
    d = utils.PatchDiscriminator()
    assert d(torch.rand(2, 1, 128, 128), torch.rand(2, 1, 128, 128)).shape[:2] == (2, 1)


def test_offline_weights_load_into_encoder():
    sd = offline_lite_state_dict("tf_efficientnet_lite0")
    enc = create_encoder("tf_efficientnet_lite0", in_chans=1, pretrained="offline")
    # a block deep in the network holds the packaged ImageNet weights, the gray stem their channel sum
    key = "blocks.3.0.conv_pw.weight"
    assert torch.equal(enc.state_dict()[key], sd[key])
    assert torch.allclose(enc.state_dict()["conv_stem.weight"], sd["conv_stem.weight"].sum(1, keepdim=True))
    with pytest.raises(PretrainedWeightsError, match="no offline weights"):
        create_encoder("resnet18", in_chans=1, pretrained="offline")


@pytest.mark.slow
@pytest.mark.parametrize("n,size", [(0, 224), (1, 240), (2, 260)])
def test_offline_lite_weights_are_imagenet_weights(n, size):
    """The packaged Lite0/1/2 weights, loaded offline into timm's model, classify scikit-image's cat as a cat
    (ImageNet classes 281-285), so the keys were mapped onto the right layers."""
    import cv2
    import skimage.data

    from utils.core.models import load_pretrained_backbone

    net = load_pretrained_backbone(f"tf_efficientnet_lite{n}", "offline").eval()
    x = cv2.resize(skimage.data.chelsea(), (size, size), interpolation=cv2.INTER_AREA).astype("float32") / 255
    with torch.no_grad():
        p = net(torch.from_numpy((x - 0.5) / 0.5).permute(2, 0, 1)[None]).softmax(-1)[0]
    assert 281 <= int(p.argmax()) <= 285 and float(p[281:286].sum()) > 0.8


def test_perceptual_features_are_pretrained_not_random():
    loss = utils.PerceptualLoss("efficientnet_lite0")
    sd = offline_lite_state_dict("tf_efficientnet_lite0")
    assert torch.equal(loss.features.state_dict()["blocks.1.0.conv_pw.weight"], sd["blocks.1.0.conv_pw.weight"])
    x = torch.rand(1, 3, 64, 64)
    assert float(loss(x, x)) == 0.0 and float(loss(x, torch.rand(1, 3, 64, 64))) > 0
    assert not any(p.requires_grad for p in loss.features.parameters())


@pytest.mark.parametrize("make", [
    lambda: utils.MaskStage(loss="bce+dice", lr=2e-3, image_size=128),
    lambda: utils.MaskStage(loss="l2+perceptual", lr=2e-3, image_size=128),
    lambda: utils.ColorStage(loss="perceptual+l1", lr=2e-3, image_size=128),
    lambda: utils.ColorStage(loss="classify", lr=2e-3, image_size=128),
    lambda: utils.InpaintStage(loss="l1+mssim+gan", lr=2e-3, image_size=128, ssim_weight=1.0, gan_weight=0.01),
], ids=["mask-bce-dice", "mask-l2-perceptual", "color", "color-classify", "inpaint"])
@pytest.mark.slow
def test_few_steps_lower_the_loss_on_a_fixed_batch(sample_data, make):
    torch.manual_seed(0)
    stage = make()
    ds, batch = batch_of(sample_data)
    if stage.name == "inpaint":
        batch = default_collate([utils.InpaintDataset(ds, 128)[i] for i in range(2)])
    stage.train_mode()
    losses = [stage.train_step(batch)["loss"] for _ in range(8)]
    assert all(np.isfinite(losses))
    assert min(losses[-3:]) < losses[0]


def test_nan_guard_skips_step_and_stops_run(sample_data, tmp_path):
    stage = utils.InpaintStage(image_size=128)
    ds, _ = batch_of(sample_data)
    batch = default_collate([utils.InpaintDataset(ds, 128)[i] for i in range(2)])
    batch["image"][:] = float("nan")
    stage.train_mode()
    before = {k: v.clone() for k, v in stage.net.state_dict().items()}
    assert stage.train_step(batch) is None
    # nothing changed: no parameter step, and no BatchNorm statistics from the bad batch
    assert all(torch.equal(before[k], v) for k, v in stage.net.state_dict().items())
    # a finite batch whose loss is non-finite is skipped by the loss check
    good = default_collate([utils.InpaintDataset(ds, 128)[i] for i in range(2)])
    stage.loss.hole_w = float("inf")
    params = {k: v.clone() for k, v in stage.net.named_parameters()}
    assert stage.train_step(good) is None
    assert all(torch.equal(params[k], v) for k, v in stage.net.named_parameters())
    stage.loss.hole_w = 6.0

    class NaNs(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            item = utils.InpaintDataset(ds, 128)[i % len(ds)]
            item["image"] = torch.full_like(item["image"], float("nan"))
            return item

    with pytest.raises(FloatingPointError, match="non-finite"):
        utils.fit(stage, NaNs(), 1, tmp_path, batch_size=2, progress=False)


@pytest.mark.slow
def test_checkpoint_round_trip_and_resume(sample_data, tmp_path):
    ds, batch = batch_of(sample_data, size=128)
    stage = utils.MaskStage(image_size=128)
    paths = list(utils.load_train_table(sample_data)["gt_image_path"])[:2]
    val = utils.SyntheticDamageDataset(paths, size=128, fixed=True)
    hist = utils.fit(
        stage,
        ds,
        1,
        tmp_path,
        batch_size=4,
        steps_per_epoch=1,
        progress=False,
        val_fn=lambda s: utils.validate_mask(s, val),
    )
    assert (tmp_path / "mask.safetensors").is_file() and (tmp_path / "mask.json").is_file()
    net, cfg = utils.load_model(tmp_path / "mask")
    assert cfg["arch"] == "MaskNet" and cfg["epoch"] == 1 and cfg["inference"]["size"] == 128
    # the history in the checkpoint JSON counts the images trained on and their rate (the scale rehearsal reads it)
    last = cfg["history"][-1]
    assert last["images"] == 4 and last["images_per_s"] > 0
    x = batch["gray"]
    stage.eval_mode()
    with torch.no_grad():
        assert torch.allclose(net(x), stage.net(x), atol=1e-6)
    # an interrupted run resumes after the last finished epoch and keeps the history
    resumed = utils.MaskStage(image_size=128)
    hist2 = utils.fit(resumed, ds, 2, tmp_path, batch_size=4, steps_per_epoch=1, progress=False)
    assert len(hist2) == 2 and hist2[0] == hist[0]
    assert utils.load_model(tmp_path / "mask")[1]["epoch"] == 2
    # a corrupt weights file is a clear error
    (tmp_path / "mask.safetensors").write_bytes(b"junk")
    with pytest.raises(Exception, match="mask"):
        utils.load_model(tmp_path / "mask")


@pytest.mark.parametrize("head", ["regression", "classes"])
def test_colorization_keeps_luminance_exactly(sample_data, head):
    ds, _ = batch_of(sample_data)
    s = ds.sample(0)
    net = utils.ColorizationNet(head=head).eval()
    out = utils.colorize(net, [s["gray"]], [s["mask"]], size=128)[0]
    assert out.shape == (512, 512, 3) and out.dtype == np.uint8
    assert np.array_equal(utils.gray_of(out), s["gray"])  # everywhere, so outside the hole too


def test_compose_rgb_exact_luma_on_extreme_chroma():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    for chroma in (np.zeros((16, 16, 2)), np.ones((16, 16, 2)), rng.random((16, 16, 2))):
        out = utils.compose_rgb(gray, chroma)
        assert np.array_equal(utils.gray_of(out), gray)
    assert (utils.compose_rgb(gray, rng.random((16, 16, 2))).std(-1) > 0).mean() > 0.9  # coloured, not gray


def test_with_luma_gives_the_luminance_exactly_and_keeps_the_chroma():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (96, 80, 3), dtype=np.uint8)
    rgb[:8] = [255, 0, 0]                                   # saturated: most luminances leave the gamut
    luma = rng.integers(0, 256, (96, 80), dtype=np.uint8)
    luma[:4], luma[4:8] = 0, 255
    kept, kept_luma = rgb.copy(), luma.copy()
    out = utils.with_luma(rgb, luma)
    assert np.array_equal(utils.gray_of(out), luma)                          # everywhere, the extremes too
    assert np.array_equal(rgb, kept) and np.array_equal(luma, kept_luma)     # the inputs are not modified
    # a small change of luminance moves R, G and B alike: Cb/Cr exactly as they were
    near = np.clip(utils.gray_of(rgb[8:]).astype(int) + rng.integers(-3, 4, luma[8:].shape), 0, 255).astype(np.uint8)
    moved = utils.with_luma(rgb[8:], near)
    target = rgb[8:].astype(int) + (near.astype(int) - utils.gray_of(rgb[8:]))[..., None]
    inside = ((target >= 0) & (target <= 255)).all(-1)
    assert inside.mean() > 0.9 and np.array_equal(moved[inside], target[inside])


def test_inpaint_changes_only_the_hole(sample_data):
    ds, _ = batch_of(sample_data)
    s = ds.sample(1)
    out = utils.inpaint(utils.InpaintNet().eval(), [s["rgb"]], [s["mask"]])[0]
    assert np.array_equal(out[~s["mask"]], s["rgb"][~s["mask"]])
    gray_out = utils.inpaint(utils.InpaintNet().eval(), [s["gray"]], [s["mask"]])[0]
    assert gray_out.shape == (512, 512) and np.array_equal(gray_out[~s["mask"]], s["gray"][~s["mask"]])


def test_untrained_inpainter_starts_at_telea():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (512, 512), dtype=np.uint8)
    mask = np.zeros((512, 512), bool)
    mask[100:200, 100:220] = True
    out = utils.inpaint(utils.InpaintNet().eval(), [img], [mask])[0]  # zero-initialised: the net returns its input
    assert np.array_equal(out, utils.prefill(img, mask))
    assert np.array_equal(out, utils.telea(img, mask)[..., 0])


@pytest.mark.slow
def test_stage_starts_from_trained_weights(sample_data, tiny_weights, tmp_path):
    """init_from loads a checkpoint's nets (fine-tuning the shipped weights on one's own photos), is part of the
    settings a resumed run must share, and refuses weights of another head, naming the file."""
    stage = utils.ColorStage(loss="perceptual+l1", image_size=128, pretrained="none")
    stage.init_from(tiny_weights)
    shipped, _ = utils.load_model(tiny_weights / "color")
    assert all(torch.equal(a, b) for a, b in zip(stage.net.state_dict().values(), shipped.state_dict().values()))
    assert stage.config.init_weights == str(tiny_weights)
    ds, _ = batch_of(sample_data, size=128)
    utils.fit(stage, ds, 1, tmp_path, batch_size=2, steps_per_epoch=1, progress=False)
    with pytest.raises(utils.loop.SettingsChangedError, match="init_weights"):
        utils.fit(
            utils.ColorStage(loss="perceptual+l1", image_size=128, pretrained="none"),
            ds,
            2,
            tmp_path,
            batch_size=2,
            steps_per_epoch=1,
            progress=False,
        )
    with pytest.raises(ValueError, match="color.safetensors"):
        utils.ColorStage(loss="classify", image_size=128, pretrained="none").init_from(tiny_weights)


@pytest.mark.slow
def test_loader_workers_serve_the_whole_run_and_end_with_it(sample_data, tmp_path):
    """With num_workers=1 the same worker process serves every epoch (persistent workers) and is gone when fit
    returns (in a Jupyter kernel, the idle workers of finished runs would pile up, each holding a copy of the data
    set)."""
    import multiprocessing

    ds, _ = batch_of(sample_data, size=128)
    alive = []
    workers = lambda: sorted(p.pid for p in multiprocessing.active_children())  # noqa: E731
    utils.fit(
        utils.MaskStage(image_size=128),
        ds,
        2,
        tmp_path,
        batch_size=2,
        num_workers=1,
        steps_per_epoch=2,
        progress=False,
        val_fn=lambda s: alive.append(workers()) or {},
    )
    assert len(alive) == 2 and len(alive[0]) == 1 and alive[0] == alive[1]
    assert multiprocessing.active_children() == []


def test_persistent_workers_draw_each_epochs_damage_as_the_main_process_does(sample_data):
    """The epoch reaches the workers' own copies of the data set with every index (EpochSampler): with workers or
    without, epoch e gives the same batches, and another epoch other ones."""
    from utils.training.loop import make_loader

    ds, _ = batch_of(sample_data, size=64)

    def epochs(workers):
        loader = make_loader(ds, batch_size=4, num_workers=workers, seed=3, device="cpu")
        out = []
        for epoch in (0, 1):
            loader.sampler.set_epoch(epoch)
            out.append([b["gray"] for b in loader])
        return out

    alone, with_workers = epochs(0), epochs(1)
    for a, b in zip(alone, with_workers):
        assert len(a) == len(b) == len(ds) // 4 and all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(alone[0][0], alone[1][0])


def test_auto_loader_workers_follow_the_cores_and_the_device(monkeypatch):
    from utils.training.loop import loader_workers

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(4)), raising=False)
    assert loader_workers("cuda") == 4 and loader_workers("cuda", processes=2) == 2  # Kaggle's 2x T4: 4 cores
    assert loader_workers("cpu") == 1 and loader_workers("cpu", processes=4) == 0
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert loader_workers("cuda") == 8
