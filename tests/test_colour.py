"""The colour post-process and its pieces: the luminance is kept exactly at every setting (outside and inside the
hole), the hole's chroma continues its ring, the strength knob reaches the pipeline, the classify+hist loss's hue
geometry, and the hole-colour figure."""

import numpy as np
import pytest
from PIL import Image

import utils
from utils.core.models import chroma_bins
from utils.inference.chroma import continue_ring_chroma, guided_filter, hole_ring_distance
from utils.inference.color import compose_rgb, pil_luma
from utils.inference.hue import BINS, bins_to_angles, pearson_loss


def test_pearson_loss_is_one_minus_correlation():
    import torch

    rng = np.random.default_rng(0)
    a, b = rng.random((3, BINS)), rng.random((3, BINS))
    want = 1 - np.mean([np.corrcoef(x, y)[0, 1] for x, y in zip(a, b)])
    assert float(pearson_loss(torch.tensor(a), torch.tensor(b))) == pytest.approx(want, abs=1e-6)


def test_bins_to_angles_puts_a_bin_mass_at_its_angle():
    centres = chroma_bins(13, 0.3).numpy()
    b2a = bins_to_angles(centres)
    neutral = int(np.argmin(np.hypot(centres[:, 0], centres[:, 1])))
    assert b2a[neutral].sum() == 0 and np.allclose(b2a.sum(1)[np.arange(len(centres)) != neutral], 1)
    k = int(np.argmax(centres[:, 1] - np.abs(centres[:, 0])))      # the most +Cr (red) bin: angle +90 degrees
    assert abs(np.argmax(b2a[k]) - 270) <= 1      # bin i covers angles -180 + i .. -179 + i degrees


def test_guided_filter_smooths_flat_regions_and_keeps_luma_edges():
    rng = np.random.default_rng(0)
    y = np.full((96, 96), 0.3, np.float32)
    y[:, 48:] = 0.8                                       # one luma edge
    chroma = np.where(np.arange(96)[None, :] < 48, -0.1, 0.1).astype(np.float32) + rng.normal(0, 0.05, (96, 96)).astype(
        np.float32
    )
    out = guided_filter(y, chroma, radius=6, eps=1e-3)
    assert out[:, 8:40].std() < 0.4 * chroma[:, 8:40].std()  # noise inside a flat region goes
    assert out[:, :44].mean() < -0.08 and out[:, 52:].mean() > 0.08  # the step at the edge stays


def test_hole_chroma_is_pulled_to_its_ring():
    rng = np.random.default_rng(0)
    y = rng.integers(90, 170, (128, 128)).astype(np.uint8)
    sky = np.zeros((128, 128, 2), np.float32) + 0.5
    sky[..., 0] += 0.12  # blue all around
    img = compose_rgb(y, sky)
    mask = np.zeros((128, 128), bool)
    mask[40:90, 30:100] = True
    blob = sky.copy()
    blob[mask] = [0.5 - 0.1, 0.5 + 0.12]  # an orange hole
    img_blob = compose_rgb(y, blob)
    assert hole_ring_distance(img_blob, mask) > 30
    out = continue_ring_chroma(img_blob, mask)
    assert hole_ring_distance(out, mask) < 3
    np.testing.assert_array_equal(out[~mask], img_blob[~mask])
    np.testing.assert_array_equal(pil_luma(out), pil_luma(img_blob))
    assert hole_ring_distance(img, mask) < 3


def colour_weights(tiny_weights, tmp_path, **hue):
    """The tiny weights with a classification colour net, a hue prior and the ring fill, as color.json stores them."""
    import shutil

    from utils.core.models import model_config

    shutil.copytree(tiny_weights, tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("onnx"))
    cfg = {**model_config("ColorizationNet", head="classes"), "stage": "color", "inference": {"size": 128}}
    torch_seed(3)
    utils.save_model(utils.ColorizationNet(head="classes"), cfg, tmp_path / "color")
    prior = np.random.default_rng(1).random(BINS) ** 3 + 0.01
    utils.update_inference_config(
        tmp_path / "color",
        hue={"strength": 0.5, "keep_hole": True, "prior": (prior / prior.sum()).tolist(), **hue},
        hole_colour="ring",
    )
    return tmp_path


def torch_seed(seed):
    import torch

    torch.manual_seed(seed)


@pytest.mark.slow
def test_post_process_keeps_the_luminance_exactly_outside_and_inside_the_hole(sample_data, tiny_weights, tmp_path):
    """PIL convert('L') of the restored image equals the input gray outside the hole and, inside it, the luminance
    the pipeline's fill set, at every strength, with and without the edge-aware smoothing and the ring fill."""
    weights = colour_weights(tiny_weights, tmp_path)
    names = ["TEST_000.png", "TEST_001.png"]
    grays = [utils.read_image(sample_data / "test_input" / n, "L") for n in names]
    masks = [utils.read_image(sample_data / "test_mask" / n, "L") > 0 for n in names]
    for edge in (0, 16):
        restorer = utils.Restorer.from_dir(weights, device="cpu", colour="score")
        restorer.hue = utils.HueConfig(**{**restorer.hue.to_dict(), "edge_radius": edge})
        raw = restorer.restore_batch(grays, masks, finish=False)
        for r, g, m in zip(raw, grays, masks):
            filled_luma = np.asarray(Image.fromarray(r.restored).convert("L"))
            assert np.array_equal(filled_luma[~m], g[~m])
            moved = 0
            for s in (0.0, 0.5, 1.0):
                out = restorer.finish(r.restored, m, strength=s)
                luma = np.asarray(Image.fromarray(out).convert("L"))
                assert np.array_equal(luma[~m], g[~m]), (edge, s)  # outside: the input gray
                assert np.array_equal(luma[m], filled_luma[m]), (edge, s)  # inside: what the fill set
                moved += int(not np.array_equal(out, r.restored))
            assert moved >= 2  # the ring fill and the remap did change the colours
    full = utils.Restorer.from_dir(weights, device="cpu", colour="score").restore_batch(grays, masks)
    assert all(
        np.array_equal(np.asarray(Image.fromarray(x.restored).convert("L"))[~m], g[~m])
        for x, g, m in zip(full, grays, masks)
    )


@pytest.mark.slow
def test_colour_setting_reaches_the_restorer(tiny_weights, tmp_path):
    """colour: 'natural' (the default) is strength 0, 'score' the strength color.json stores, a number that
    strength; the ring fill is read from color.json; bad settings are refused by name."""
    weights = colour_weights(tiny_weights, tmp_path, edge_radius=16)
    natural = utils.Restorer.from_dir(weights, device="cpu")
    assert natural.colour_strength == 0.0 and natural.hole_colour == "ring" and natural.hue.edge_radius == 16
    assert utils.Restorer.from_dir(weights, device="cpu", colour="score").colour_strength == 0.5
    assert utils.Restorer.from_dir(weights, device="cpu", colour=0.25).colour_strength == 0.25
    assert natural.with_colour("score").colour_strength == 0.5 and natural.colour_strength == 0.0
    for bad in ("vivid", 1.5, -0.1, None, True):
        with pytest.raises(ValueError, match="colour"):
            utils.Restorer.from_dir(weights, device="cpu", colour=bad)
    with pytest.raises(ValueError, match="hole_colour"):
        utils.Restorer.from_dir(weights, device="cpu", hole_colour="blur")
    assert utils.Restorer.from_dir(tiny_weights, device="cpu").hole_colour == "net"  # no key: the net's own


def test_ring_fill_makes_the_hole_continue_its_surroundings():
    """Restorer.finish with hole_colour='ring': an orange hole in a blue sky becomes sky-coloured; 'net' leaves it."""
    rng = np.random.default_rng(0)
    y = rng.integers(90, 170, (128, 128)).astype(np.uint8)
    sky = np.zeros((128, 128, 2), np.float32) + 0.5
    sky[..., 0] += 0.12
    mask = np.zeros((128, 128), bool)
    mask[40:90, 30:100] = True
    sky[mask] = [0.5 - 0.1, 0.5 + 0.12]
    img = compose_rgb(y, sky)
    ring = utils.Restorer(None, None, None, amp=False, hole_colour="ring")
    net = utils.Restorer(None, None, None, amp=False, hole_colour="net")
    assert hole_ring_distance(ring.finish(img, mask), mask) < 3 < 30 < hole_ring_distance(net.finish(img, mask), mask)


def test_hole_colour_figure_draws_ring_and_hole_chroma(tmp_path):
    """The hole-colour figure: ring and hole mean chroma for the truth and ours, and the per-image distances; a hole
    painted a colour its ring lacks is far from the diagonal; the PNG is written."""
    from utils.inference.chroma import hole_ring_chroma

    rgb = np.full((96, 96, 3), (90, 120, 200), np.uint8)  # a blue sky
    mask = np.zeros((96, 96), bool)
    mask[30:60, 30:60] = True
    blob = rgb.copy()
    blob[mask] = (230, 120, 30)  # an orange blob in it
    hole, ring = hole_ring_chroma(blob, mask)
    assert hole[0] < 0 < ring[0] and hole[1] > 0 > ring[1]  # orange: Cb-, Cr+; blue: Cb+, Cr-
    assert utils.chroma.hole_ring_distance(rgb, mask) < 1e-2 < 50 < utils.chroma.hole_ring_distance(blob, mask)
    out = tmp_path / "hole.png"
    fig = utils.plot_hole_colour({"ours": [blob, rgb]}, [rgb, rgb], [mask, mask], out)
    right = fig.axes[1]
    xy = right.collections[0].get_offsets()
    assert np.allclose(xy[:, 0], 0, atol=1e-2) and xy[0, 1] > 50 and abs(xy[1, 1]) < 1e-2
    assert Image.open(out).size[0] > 500


@pytest.mark.slow
def test_hue_histogram_loss_is_the_metric_term_and_falls_on_a_fixed_batch(sample_data):
    """classify+hist: the truth's histogram is the angle histogram of its visible-chroma pixels taken to OpenCV hue
    bins; the loss is 1 - Pearson correlation with the net's soft histogram, and a few steps lower it."""
    import torch
    from torch.utils.data import default_collate

    from utils.inference.color import rgb_to_cbcr
    from utils.inference.hue import angle_histogram, angle_to_hsv_hue

    table = utils.load_train_table(sample_data)
    ds = utils.SyntheticDamageDataset(table["gt_image_path"][:2], size=128, augment=False)
    batch = default_collate([ds[i] for i in range(2)])
    stage = utils.ColorStage(loss="classify+hist", image_size=128, lr=2e-3, pretrained="none")
    hist = stage.loss.hist
    rgb = (batch["rgb"][0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    want = angle_histogram(rgb) @ angle_to_hsv_hue()
    got = hist.true_histogram(rgb_to_cbcr(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255))[0].numpy()
    assert np.corrcoef(want, got)[0, 1] > 0.999
    logits = torch.randn(2, 169, 8, 8)
    t = hist.true_histogram(rgb_to_cbcr(batch["rgb"]))
    p = torch.softmax(logits, 1).mean((2, 3)) @ hist.bin_to_hue
    r = [np.corrcoef(p[i].numpy(), t[i].numpy())[0, 1] for i in range(2)]
    assert abs(float(hist(logits, rgb_to_cbcr(batch["rgb"]))) - (1 - np.mean(r))) < 1e-4
    first = [stage.train_step(batch)["hist"] for _ in range(8)]
    assert first[-1] < first[0]


def test_rebalance_lambda_one_is_plain_cross_entropy():
    """rebalance_lambda (Zhang et al.'s lambda) 1.0 weighs every pixel the same; 0.5 (theirs) up-weights rare bins.
    The loss's default is the colour config's, and the stage passes the config's value on."""
    import torch

    from utils.core.models import chroma_bins
    from utils.training.losses import ColorLoss, RebalancedBinLoss

    centers = chroma_bins(13, 0.3)
    torch.manual_seed(0)
    logits, cbcr = torch.randn(2, 169, 16, 16), 0.5 + 0.1 * torch.rand(2, 2, 16, 16)
    flat, zhang = RebalancedBinLoss(centers, mix=1.0), RebalancedBinLoss(centers, mix=0.5)
    zhang.prior.copy_(torch.softmax(torch.randn(169) * 3, 0))  # a skewed running prior
    lo = torch.nn.functional.avg_pool2d(logits, 4)
    t = torch.nn.functional.avg_pool2d(cbcr, 4) - 0.5
    target = torch.softmax(-((t.unsqueeze(1) - centers.view(1, -1, 2, 1, 1)) ** 2).sum(2) / (2 * 0.04**2), 1)
    plain = (-(target * torch.log_softmax(lo, 1)).sum(1)).mean()
    assert torch.allclose(flat(logits, cbcr), plain, atol=1e-5)
    assert not torch.allclose(zhang(logits, cbcr), plain, atol=1e-3)
    assert ColorLoss("classify", bin_centers=centers).bins.mix == utils.ColorConfig().rebalance_lambda
    stage = utils.ColorStage(loss="classify", image_size=64, pretrained="none", rebalance_lambda=1.0)
    assert stage.loss.bins.mix == 1.0
