"""Colour pieces of issue 12: the hue head learns, the chroma post-processing keeps luma exactly, the hole's
chroma continues its ring, and a restorer with all of them loads from a checkpoint and keeps luma exactly."""

import numpy as np
import pytest
from PIL import Image

import utils
from utils.chroma import (ChromaConfig, apply_chroma, continue_ring_chroma, guided_filter, hole_ring_distance,
                          rgb_to_cbcr_np, smooth_chroma)
from utils.color import compose_rgb, pil_luma
from utils.hue import BINS, _smooth_circular
from utils.hue_head import HueHead, bins_to_angles, fit_hue_head, pearson_loss, soft_angle_histogram
from utils.models import chroma_bins


def photo_rgb():
    from skimage import data
    import cv2

    return cv2.resize(data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)


def test_pearson_loss_is_one_minus_correlation():
    import torch

    rng = np.random.default_rng(0)
    a, b = rng.random((3, BINS)), rng.random((3, BINS))
    want = 1 - np.mean([np.corrcoef(x, y)[0, 1] for x, y in zip(a, b)])
    assert float(pearson_loss(torch.tensor(a), torch.tensor(b))) == pytest.approx(want, abs=1e-6)


def test_head_starts_at_the_prior_and_its_loss_falls_on_a_fixed_batch():
    rng = np.random.default_rng(0)
    prior = _smooth_circular(rng.random(BINS) + 0.2, 10)
    prior /= prior.sum()
    # true histograms: each photo's own peaks, which the soft histogram sees blurred and the prior not at all
    true, soft = [], []
    for _ in range(48):
        h = np.zeros(BINS)
        h[rng.integers(0, BINS, 3)] = rng.random(3) + 0.5
        t = _smooth_circular(h, 6) + 0.1 * prior
        true.append(t / t.sum())
        s = _smooth_circular(h, 20) + 0.3 * prior
        soft.append(s / s.sum())
    true, soft = np.array(true), np.array(soft)
    own = np.full_like(soft, 1 / BINS)
    head = HueHead(prior)
    np.testing.assert_allclose(head.predict(soft, own)[0], prior, atol=1e-3)     # untrained: the blind guess
    losses = fit_hue_head(head, soft, own, true, steps=150, lr=0.05, batch=48)
    assert losses[-1] < 0.5 * losses[0]
    assert head.weights[1] > 0.3          # it learned to trust the soft histogram here


def test_soft_histogram_puts_a_bin_mass_at_its_angle():
    centres = chroma_bins(13, 0.3).numpy()
    b2a = bins_to_angles(centres)
    neutral = int(np.argmin(np.hypot(centres[:, 0], centres[:, 1])))
    assert b2a[neutral].sum() == 0 and np.allclose(b2a.sum(1)[np.arange(len(centres)) != neutral], 1)
    k = int(np.argmax(centres[:, 1] - np.abs(centres[:, 0])))      # the most +Cr (red) bin: angle +90 degrees
    mass = np.zeros(len(centres))
    mass[k] = 1
    h = soft_angle_histogram(mass[None], b2a)[0]
    assert abs(np.argmax(h) - 270) <= 1      # bin i covers angles -180 + i .. -179 + i degrees


def test_chroma_post_processing_keeps_luma_exactly():
    rgb = photo_rgb()
    y = pil_luma(rgb)
    mask = np.zeros(rgb.shape[:2], bool)
    mask[80:150, 100:170] = True
    entropy = np.random.default_rng(0).random((64, 64)) * np.log(169)
    for cfg in (ChromaConfig(smooth_radius=8, smooth_eps=1e-3), ChromaConfig(unsure_desat=0.8),
                ChromaConfig(hole="ring"), ChromaConfig(8, 1e-2, 0.5, "ring")):
        out = apply_chroma(rgb, mask, cfg, entropy)
        assert out.dtype == np.uint8 and out.shape == rgb.shape
        np.testing.assert_array_equal(pil_luma(out), y)
        assert not np.array_equal(out, rgb)


def test_unsure_pixels_get_paler():
    rgb = photo_rgb()
    entropy = np.zeros((256, 256), np.float32)
    entropy[:, 128:] = np.log(169)        # right half: the net is completely unsure
    out = apply_chroma(rgb, np.zeros((256, 256), bool), ChromaConfig(unsure_desat=0.75), entropy)
    c0, c1 = np.hypot(*rgb_to_cbcr_np(rgb).transpose(2, 0, 1)), np.hypot(*rgb_to_cbcr_np(out).transpose(2, 0, 1))
    assert abs(c1[:, :120].mean() - c0[:, :120].mean()) < 0.002
    assert c1[:, 136:].mean() < 0.4 * c0[:, 136:].mean()


def test_guided_filter_smooths_flat_regions_and_keeps_luma_edges():
    rng = np.random.default_rng(0)
    y = np.full((96, 96), 0.3, np.float32)
    y[:, 48:] = 0.8                                       # one luma edge
    chroma = np.where(np.arange(96)[None, :] < 48, -0.1, 0.1).astype(np.float32) + rng.normal(0, 0.05, (96, 96)).astype(np.float32)
    out = guided_filter(y, chroma, radius=6, eps=1e-3)
    assert out[:, 8:40].std() < 0.4 * chroma[:, 8:40].std()      # noise inside a flat region goes
    assert out[:, :44].mean() < -0.08 and out[:, 52:].mean() > 0.08     # the step at the edge stays


def test_smooth_chroma_removes_blotches_inside_one_object():
    rgb = photo_rgb()
    noisy = compose_rgb(pil_luma(rgb).astype(np.uint8),
                        rgb_to_cbcr_np(rgb) + 0.5 + np.random.default_rng(1).normal(0, 0.04, (256, 256, 2)))
    out = smooth_chroma(noisy, 8, 1e-3)
    err = lambda a: np.abs(rgb_to_cbcr_np(a) - rgb_to_cbcr_np(rgb)).mean()  # noqa: E731
    assert err(out) < 0.6 * err(noisy)


def test_hole_chroma_is_pulled_to_its_ring():
    rng = np.random.default_rng(0)
    y = rng.integers(90, 170, (128, 128)).astype(np.uint8)
    sky = np.zeros((128, 128, 2), np.float32) + 0.5
    sky[..., 0] += 0.12                   # blue all around
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


def test_restorer_with_head_and_chroma_from_a_checkpoint(sample_data, tiny_weights, tmp_path):
    import shutil

    from utils.models import model_config

    shutil.copytree(tiny_weights, tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("onnx"))
    cfg = {**model_config("ColorizationNet", head="classes"), "stage": "color", "inference": {"size": 128}}
    utils.save_model(utils.ColorizationNet(head="classes"), cfg, tmp_path / "color")
    prior = np.ones(BINS) / BINS
    cfg["inference"].update(hue={"strength": 1.0, "smooth": 0.0, "keep_hole": True, "prior": prior.tolist(), "hsv_pass": 3.0},
                            hue_head={"weights": [1.0, 0.5, 0.25], "bias": [0.0] * BINS, "own_smooth": 8.0},
                            chroma=ChromaConfig(4, 1e-3, 0.5, "ring").to_dict())
    utils.update_inference_config(tmp_path / "color", **cfg["inference"])   # keeps checksums.json current
    restorer = utils.Restorer.from_dir(tmp_path, device="cpu")
    assert restorer.hue_head is not None and restorer.chroma.hole == "ring"
    gray = utils.read_image(sample_data / "test_input" / "TEST_000.png", "L")
    r = restorer.restore_batch([gray])[0]
    assert np.array_equal(utils.gray_of(r.restored)[~r.mask], gray[~r.mask])
    with pytest.warns(UserWarning, match=r"unknown keys \['smooth'\]"):
        assert ChromaConfig.from_dict({"smooth": 3}) == ChromaConfig()
    with pytest.raises(ValueError, match="head='classes'"):     # the tiny regression-head colour net
        utils.Restorer.from_dir(tiny_weights, device="cpu", chroma=ChromaConfig(unsure_desat=0.5))


def test_colour_benchmark_rows(sample_data, tiny_weights, tmp_path):
    import shutil

    from utils.color_eval import colour_benchmark
    from utils.models import model_config

    shutil.copytree(tiny_weights, tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("onnx"))
    prior = _smooth_circular(np.random.default_rng(0).random(BINS), 10)
    cfg = {**model_config("ColorizationNet", head="classes"), "stage": "color",
           "inference": {"size": 128, "hue": {"strength": 0.0, "smooth": 8.0, "keep_hole": True,
                                              "prior": list(prior / prior.sum())}}}
    utils.save_model(utils.ColorizationNet(head="classes"), cfg, tmp_path / "color")
    restorer = utils.Restorer.from_dir(tmp_path, device="cpu")
    names = ["TEST_000.png", "TEST_001.png"]
    grays = [utils.read_image(sample_data / "test_input" / n, "L") for n in names]
    gts = [utils.read_image(sample_data / "test_gt" / n, "RGB") for n in names]
    masks = [utils.read_image(sample_data / "test_mask" / n, "L") > 0 for n in names]
    table, preds, pred_masks = colour_benchmark(restorer, grays, gts, masks, names, progress=False)
    assert list(table.index) == ["gray copy", "blind guess (prior remap)", "colour stage alone (true luminance)",
                                 "pipeline", "oracle (true hue histogram)", "truth"]
    terms = table.drop(index="truth")[["score", "ssim", "masked_ssim", "hue"]].to_numpy()
    assert np.isfinite(terms).all() and (terms <= 1).all() and (terms >= -1).all()
    assert table.loc["gray copy", "hole_ring"] < 1e-3 and table.loc["truth", "hole_ring"] > 0
    for name, p in preds.items():    # every row keeps the input's luma outside the (predicted) hole
        if name != "colour stage alone (true luminance)":
            assert all(np.array_equal(utils.gray_of(x)[~m], g[~m]) for x, g, m in zip(p, grays, pred_masks))


def test_hole_colour_figure_draws_ring_and_hole_chroma(tmp_path):
    """The hole-colour figure: ring and hole mean chroma for the truth and ours, and the per-image distances; a hole
    painted a colour its ring lacks is far from the diagonal; the PNG is written."""
    from utils.chroma import hole_ring_chroma

    rgb = np.full((96, 96, 3), (90, 120, 200), np.uint8)          # a blue sky
    mask = np.zeros((96, 96), bool)
    mask[30:60, 30:60] = True
    blob = rgb.copy()
    blob[mask] = (230, 120, 30)                                     # an orange blob in it
    hole, ring = hole_ring_chroma(blob, mask)
    assert hole[0] < 0 < ring[0] and hole[1] > 0 > ring[1]          # orange: Cb-, Cr+; blue: Cb+, Cr-
    assert utils.chroma.hole_ring_distance(rgb, mask) < 1e-2 < 50 < utils.chroma.hole_ring_distance(blob, mask)
    out = tmp_path / "hole.png"
    fig = utils.plot_hole_colour({"ours": [blob, rgb]}, [rgb, rgb], [mask, mask], out)
    right = fig.axes[1]
    xy = right.collections[0].get_offsets()
    assert np.allclose(xy[:, 0], 0, atol=1e-2) and xy[0, 1] > 50 and abs(xy[1, 1]) < 1e-2
    assert Image.open(out).size[0] > 500


def test_hue_histogram_loss_is_the_metric_term_and_falls_on_a_fixed_batch(sample_data):
    """classify+hist: the truth's histogram is the angle histogram of its visible-chroma pixels taken to OpenCV hue
    bins; the loss is 1 - Pearson correlation with the net's soft histogram, and a few steps lower it."""
    import torch
    from torch.utils.data import default_collate

    from utils.color import rgb_to_cbcr
    from utils.hue import angle_histogram
    from utils.hue_head import angle_to_hsv_hue
    from utils.losses import HueHistogramLoss

    table = utils.load_train_table(sample_data)
    ds = utils.SyntheticDamageDataset(table["gt_image_path"][:2], size=128, augment=False)
    batch = default_collate([ds[i] for i in range(2)])
    stage = utils.ColorStage(loss="classify+hist", size=128, lr=2e-3, pretrained="none")
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


def test_paired_difference_of_two_variant_runs_is_per_photo(tmp_path):
    """tools/colour_paired.py: B - A is averaged per photo first (crops of one photo are not independent), its
    standard error is over photos; runs on other images are refused."""
    import importlib.util
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("colour_paired", root / "tools" / "colour_paired.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    a = np.zeros((4, 4))
    b = np.array([[0.1] * 4, [0.3] * 4, [0.0] * 4, [0.0] * 4])      # photo p: +0.2 on average, photo q: 0
    d = mod.paired(a, b, ["p", "p", "q", "q"])
    assert abs(d["score"][0] - 0.1) < 1e-9 and abs(d["score"][1] - np.std([0.2, 0.0], ddof=1) / np.sqrt(2)) < 1e-9
    run = {"names": ["a", "b", "c", "d"], "image_photos": ["p", "p", "q", "q"]}
    (tmp_path / "a.json").write_text(json.dumps({**run, "per_image": {"v": a.tolist()}}))
    (tmp_path / "b.json").write_text(json.dumps({**run, "per_image": {"v": b.tolist()}}))
    out = subprocess.run([sys.executable, str(root / "tools" / "colour_paired.py"), str(tmp_path / "a.json"),
                          str(tmp_path / "b.json")], capture_output=True, text=True, check=True).stdout
    assert "2 photos" in out and "score +0.1000" in out
    (tmp_path / "c.json").write_text(json.dumps({**run, "names": ["x"] * 4, "per_image": {"v": b.tolist()}}))
    bad = subprocess.run([sys.executable, str(root / "tools" / "colour_paired.py"), str(tmp_path / "a.json"),
                          str(tmp_path / "c.json")], capture_output=True, text=True)
    assert bad.returncode == 2 and "other images" in bad.stderr


def test_rebalance_lambda_one_is_plain_cross_entropy():
    """rebalance_lambda (Zhang et al.'s lambda) 1.0 weighs every pixel the same; 0.5 (theirs) up-weights rare bins.
    Only a non-default value enters the settings a resumed run must share."""
    import torch

    from utils.losses import ColorLoss, RebalancedBinLoss
    from utils.models import chroma_bins

    centers = chroma_bins(13, 0.3)
    torch.manual_seed(0)
    logits, cbcr = torch.randn(2, 169, 16, 16), 0.5 + 0.1 * torch.rand(2, 2, 16, 16)
    flat, zhang = RebalancedBinLoss(centers, mix=1.0), RebalancedBinLoss(centers, mix=0.5)
    zhang.prior.copy_(torch.softmax(torch.randn(169) * 3, 0))          # a skewed running prior
    lo = torch.nn.functional.avg_pool2d(logits, 4)
    t = torch.nn.functional.avg_pool2d(cbcr, 4) - 0.5
    target = torch.softmax(-((t.unsqueeze(1) - centers.view(1, -1, 2, 1, 1)) ** 2).sum(2) / (2 * 0.04 ** 2), 1)
    plain = (-(target * torch.log_softmax(lo, 1)).sum(1)).mean()
    assert torch.allclose(flat(logits, cbcr), plain, atol=1e-5)
    assert not torch.allclose(zhang(logits, cbcr), plain, atol=1e-3)
    assert "rebalance_lambda" not in vars(ColorLoss("classify", bin_centers=centers))
    assert vars(ColorLoss("classify", bin_centers=centers, rebalance_lambda=1.0))["rebalance_lambda"] == 1.0
    assert utils.ColorStage(loss="classify", size=64, pretrained="none", rebalance_lambda=1.0).loss.bins.mix == 1.0


def test_candidate_weights_take_the_new_colour_net_and_the_old_post_processing(tiny_weights, tmp_path):
    """tools/candidate_weights.py: the base's weights with the checkpoint's colour net, the base's hue and chroma
    settings and no hue head (it belongs to the old net); checksums verify; the base is never overwritten."""
    import importlib.util
    import json
    import shutil
    from pathlib import Path

    import torch

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("candidate_weights", root / "tools" / "candidate_weights.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    base = tmp_path / "base"
    shutil.copytree(tiny_weights, base, ignore=shutil.ignore_patterns("onnx"))
    utils.update_inference_config(base / "color", chroma={"smooth_radius": 8}, hue_head={"weights": [1, 0, 0]})
    ck = tmp_path / "ck"
    torch.manual_seed(5)
    utils.save_model(utils.ColorizationNet(), {**utils.models.model_config("ColorizationNet"), "stage": "color",
                                               "inference": {"size": 96, "chroma_gain": 1.5}}, ck / "color")
    inf = mod.assemble(ck, tmp_path / "cand", base)
    assert inf["size"] == 96 and inf["chroma_gain"] == 1.5 and inf["chroma"] == {"smooth_radius": 8}
    cfg = json.loads((tmp_path / "cand" / "color.json").read_text())
    assert "hue_head" not in cfg["inference"]
    utils.checkpoints.verify_checksums(tmp_path / "cand")
    new, _ = utils.load_model(tmp_path / "cand" / "color")
    ref, _ = utils.load_model(ck / "color")
    assert all(torch.equal(a, b) for a, b in zip(new.state_dict().values(), ref.state_dict().values()))
    assert (tmp_path / "cand" / "mask.safetensors").read_bytes() == (base / "mask.safetensors").read_bytes()
    with pytest.raises(ValueError, match="overwrite"):
        mod.assemble(ck, base, base)


def _tool(name):
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location(name, root / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cross_fit_folds_deal_every_photo_once_and_every_source_to_every_fold():
    mod = _tool("cross_fit_colour")
    photos = [f"/p/{pkg}_{i}.jpg" for pkg in "abc" for i in range(6)]
    package_of = {p: p.split("/")[-1][0] for p in photos}
    folds = mod.deal_folds(photos, package_of, 3, seed=12)
    assert sorted(x for f in folds for x in f) == sorted(photos)
    assert all(len(f) == 6 and {package_of[x] for x in f} == set("abc") for f in folds)
    assert folds == mod.deal_folds(photos, package_of, 3, seed=12) != mod.deal_folds(photos, package_of, 3, seed=13)


def test_head_features_of_each_photo_come_from_its_own_fold_net(sample_data, tiny_weights, tmp_path):
    """fit_hue_head's cross-fitting: a photo's features come from the net its fold names, the others' do not change."""
    import shutil

    import pandas as pd
    import torch

    fit = _tool("fit_hue_head")
    nets = []
    for seed in (8, 9):
        w = tmp_path / f"w{seed}"
        shutil.copytree(tiny_weights, w, ignore=shutil.ignore_patterns("onnx"))
        torch.manual_seed(seed)
        utils.save_model(utils.ColorizationNet(head="classes"), {**utils.models.model_config("ColorizationNet", head="classes"),
                         "stage": "color", "inference": {"size": 96}}, w / "color")
        nets.append(w)
    photos = sorted(pd.read_csv(sample_data / "manifest.csv").source.unique())[:2]
    a = fit.build_features(photos, nets, [0, 0], 4, (1.0, 1.2), 3, tmp_path / "a")
    b = fit.build_features(photos, nets, [0, 1], 4, (1.0, 1.2), 3, tmp_path / "b")
    first, second = a["photo"] == 0, a["photo"] == 1
    assert first.any() and second.any() and (a["photo"] == b["photo"]).all() and list(a["sources"]) == photos
    np.testing.assert_array_equal(a["mass"][first], b["mass"][first])
    np.testing.assert_array_equal(a["true"], b["true"])
    assert not np.allclose(a["mass"][second], b["mass"][second])


def test_cross_fit_trains_a_net_per_fold_and_validates_each_fold_on_the_net_that_never_saw_it(sample_data, tiny_weights,
                                                                                               tmp_path):
    """tools/cross_fit_colour.py end to end, tiny: 2 folds + the final net (1 step each), the head fitted on
    out-of-fold features and saved into the final weights, the pooled validation of both folds' crops."""
    import json

    import shutil

    from utils.hue import HueConfig, hue_prior

    mod = _tool("cross_fit_colour")
    base = tmp_path / "base"           # the tiny weights with a hue prior, as notebook 03 writes it
    shutil.copytree(tiny_weights, base, ignore=shutil.ignore_patterns("onnx"))
    prior = hue_prior(sorted((sample_data / "train_gt").glob("*.png")), progress=False)
    utils.update_inference_config(base / "color", hue=HueConfig(prior=prior.tolist()).to_dict())
    out = tmp_path / "xfit"
    args = ["--corpus", str(sample_data), "--out", str(out), "--base", str(base), "--folds", "2",
            "--epochs", "1", "--train-arg=--steps-per-epoch=1", "--train-arg=--batch-size=2",
            "--train-arg=--image-size=64", "--train-arg=--pretrained=none", "--per-photo", "1", "--crops", "6"]
    assert mod.main(args + ["--variants", "hue=none", "hue=head"]) == 0
    plan = json.loads((out / "plan.json").read_text())
    folds = [f["photos"] for f in plan["folds"]]
    assert not set(folds[0]) & set(folds[1]) and not set(plan["validation_only"]) & set(folds[0] + folds[1])
    for k, photos in enumerate(folds):     # no fold's net trained on its own photos
        assert not set(photos) & set((out / f"fold{k}_train.txt").read_text().split())
    cfg = json.loads((out / "weights_all" / "color.json").read_text())
    assert cfg["inference"]["hue_head"]["training"]["cross_fit"] == str(out / "plan.json")
    assert all((out / "head" / f"head_fold{k}.json").is_file() for k in range(2))
    val = json.loads((out / "crossfit_validation.json").read_text())
    assert val["photos"] == len(folds[0]) + len(folds[1]) and val["images"] == len(val["names"])
    assert {n.split("/")[0] for n in val["names"]} == {"val_fold0", "val_fold1"}
    assert [r["variant"] for r in val["rows"]] == ["hue=none", "hue=head"]
    before = (out / "ck_all" / "color.safetensors").stat().st_mtime_ns
    assert mod.main(args + ["--steps", "train"]) == 0
    assert (out / "ck_all" / "color.safetensors").stat().st_mtime_ns == before      # trained already: skipped
    assert mod.main(args + ["--loss", "classify", "--steps", "train"]) == 2         # other settings: refused


def test_scene_overlap_finds_the_training_photo_of_a_mirrored_copy_and_splits_scores(sample_data, tmp_path):
    """tools/scene_overlap.py: a mirrored copy of a training photo has that photo as its nearest training photo
    (cosine near 1, a seen scene), a test photo is further; scores are averaged per photo, then per group."""
    import json

    import pandas as pd
    from PIL import Image, ImageOps

    mod = _tool("scene_overlap")
    man = pd.read_csv(sample_data / "manifest.csv")
    train = sorted(man[man.split == "train"].source.unique())
    other = sorted(man[man.split == "test"].source.unique())[0]
    mirrored = tmp_path / "mirrored.png"
    ImageOps.mirror(Image.open(train[0]).convert("RGB")).save(mirrored)
    t = mod.nearest_train(sample_data, [str(mirrored), other]).set_index("photo")
    assert t.loc[str(mirrored), "nearest_train"] == train[0] and t.loc[str(mirrored), "cosine"] > 0.9
    assert t.loc[other, "cosine"] < t.loc[str(mirrored), "cosine"]
    scores = {"image_photos": ["a", "a", "b", "c"], "per_image": {"v": [[0.2, 0, 0, 0.1], [0.4, 0, 0, 0.3],
                                                                         [0.9, 0, 0, 0.8], [0.5, 0, 0, 0.4]]}}
    s = mod.split_scores(json.loads(json.dumps(scores)), {"a"}, None).set_index("photos")
    assert s.loc["seen scene", "n"] == 1 and abs(s.loc["seen scene", "score"] - 0.3) < 1e-9
    assert s.loc["new scene", "n"] == 2 and abs(s.loc["new scene", "hue"] - 0.6) < 1e-9
