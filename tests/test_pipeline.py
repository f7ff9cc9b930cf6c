import json

import numpy as np
import pytest

import utils


@pytest.mark.slow
def test_pipeline_end_to_end_on_tiny_model(sample_data, tiny_weights):
    restorer = utils.Restorer.from_dir(tiny_weights, device="cpu")
    assert restorer.sizes == {"mask": 128, "color": 128, "inpaint": 128}
    grays = [utils.read_image(sample_data / "test_input" / f"TEST_00{i}.png", "L") for i in range(2)]
    results = restorer.restore_batch(grays)
    for g, r in zip(grays, results):
        assert r.restored.shape == (512, 512, 3) and r.restored.dtype == np.uint8
        assert r.mask.shape == (512, 512) and r.mask.dtype == bool
        # outside the predicted hole the output keeps the input luminance exactly
        assert np.array_equal(utils.gray_of(r.restored)[~r.mask], g[~r.mask])
        # the colour net's image: the input's luminance, the hole pre-filled (the inpainter's own pre-fill)
        assert np.array_equal(utils.gray_of(r.colorized), utils.prefill(g, r.mask, restorer.prefill))
    single = restorer.restore(grays[0])
    assert np.array_equal(single, results[0].restored)
    gt = utils.read_image(sample_data / "test_gt" / "TEST_000.png", "RGB")
    mask = utils.read_image(sample_data / "test_mask" / "TEST_000.png", "L") > 0
    assert 0 < utils.score_image(gt, single, mask)["score"] <= 1


def test_known_masks_and_other_order(sample_data, tiny_weights):
    gray = utils.read_image(sample_data / "test_input" / "TEST_001.png", "L")
    mask = utils.read_image(sample_data / "test_mask" / "TEST_001.png", "L") > 0
    for order in utils.pipeline.ORDERS:
        r = utils.Restorer.from_dir(tiny_weights, device="cpu", order=order).restore_batch([gray], masks=[mask])[0]
        assert np.array_equal(r.mask, mask)
        assert np.array_equal(utils.gray_of(r.restored)[~mask], gray[~mask])


@pytest.mark.slow
def test_restore_images_any_size_and_mode_batched(tiny_weights):
    restorer = utils.Restorer.from_dir(tiny_weights, device="cpu")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (300, 200, 3), dtype=np.uint8), rng.integers(0, 256, (512, 512), dtype=np.uint8),
              rng.integers(0, 256, (600, 640, 4), dtype=np.uint8)]
    out = list(restorer.restore_images(images, batch_size=2))
    assert [r.restored.shape for r in out] == [(300, 200, 3), (512, 512, 3), (600, 640, 3)]
    assert [r.mask.shape for r in out] == [(300, 200), (512, 512), (600, 640)]
    assert all(r.submission_image.shape == (512, 512, 3) for r in out)
    # the 512x512 input is restored exactly as restore_batch does it, whatever the batch around it
    assert np.array_equal(out[1].restored, restorer.restore_batch([images[1]])[0].restored)
    assert out[1].competition is None and out[0].competition is not None
    # resized back, an image keeps its own luminance outside the hole exactly
    for image, r in zip(images, out):
        own = utils.gray_of(image if image.ndim == 2 else image[..., :3])
        for rgb in (r.restored, r.colorized):
            assert np.array_equal(utils.gray_of(rgb)[~r.mask], own[~r.mask])


def test_predict_mask_api(sample_data, tiny_weights):
    net, _ = utils.load_model(tiny_weights / "mask")
    gray = utils.read_image(sample_data / "test_input" / "TEST_000.png", "L")
    m = utils.predict_mask(net, gray, size=128)
    assert m.shape == (512, 512) and m.dtype == bool
    assert len(utils.predict_masks(net, [gray, gray], size=128)) == 2


def test_weights_checksums(tiny_weights, tmp_path):
    out = tmp_path / "w"
    sums = utils.export_weights(tiny_weights, out)
    assert set(sums) == {f"{s}{e}" for s in ("mask", "color", "inpaint") for e in (".safetensors", ".json")}
    utils.verify_checksums(out)
    utils.Restorer.from_dir(out, device="cpu")
    data = bytearray((out / "color.safetensors").read_bytes())
    data[-1] ^= 1
    (out / "color.safetensors").write_bytes(bytes(data))
    with pytest.raises(utils.ChecksumError, match="color.safetensors"):
        utils.Restorer.from_dir(out, device="cpu")
    assert json.loads((out / "checksums.json").read_text())["mask.safetensors"] == utils.checkpoints.sha256(
        out / "mask.safetensors"
    )


def test_weights_and_configs_are_verified(tiny_weights, tmp_path):
    """A tampered config is caught; without checksums.json nothing loads unverified; a broken
    JSON config names its file."""
    import shutil

    out = tmp_path / "w"
    utils.export_weights(tiny_weights, out)
    cfg = json.loads((out / "mask.json").read_text())
    cfg["inference"]["refine"]["threshold"] = 0.99
    (out / "mask.json").write_text(json.dumps(cfg))
    with pytest.raises(utils.ChecksumError, match="mask.json"):
        utils.Restorer.from_dir(out, device="cpu")

    bare = tmp_path / "bare"
    shutil.copytree(tiny_weights, bare)
    (bare / "checksums.json").unlink(missing_ok=True)
    data = bytearray((bare / "color.safetensors").read_bytes())
    data[-1] ^= 1
    (bare / "color.safetensors").write_bytes(bytes(data))
    with pytest.raises(utils.ChecksumError, match="checksums.json: missing"):
        utils.Restorer.from_dir(bare, device="cpu")

    broken = tmp_path / "broken"
    utils.export_weights(tiny_weights, broken)
    (broken / "inpaint.json").write_text("{ not json")
    with pytest.raises(ValueError, match=r"inpaint\.json: not a valid JSON config"):
        utils.load_model(broken / "inpaint")


def test_training_checkpoints_carry_checksums(tiny_weights, tmp_path):
    """What notebooks 02-04 save is verifiable: save_model refreshes the folder's checksums.json, and so does
    a calibration written into a config afterwards."""
    utils.verify_checksums(tiny_weights)
    ck = tmp_path / "ck"
    net, cfg = utils.load_model(tiny_weights / "color")
    utils.save_model(net, cfg, ck / "color")
    utils.verify_checksums(ck, stems=("color",))
    utils.update_inference_config(ck / "color", hole_colour="ring")
    utils.verify_checksums(ck, stems=("color",))


def test_a_colour_config_with_a_chroma_gain_of_one_loads_and_restores_alike(sample_data, tiny_weights, tmp_path):
    """Weights exported with `chroma_gain: 1.0` in color.json's inference settings (the shipped ones) restore as
    without it; another gain, which the pipeline cannot apply, is an error naming the file."""
    import shutil

    gray = utils.read_image(sample_data / "test_input" / "TEST_000.png", "L")
    plain = utils.Restorer.from_dir(tiny_weights, device="cpu").restore(gray)
    shutil.copytree(tiny_weights, tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("onnx"))
    utils.update_inference_config(tmp_path / "color", chroma_gain=1.0)
    np.testing.assert_array_equal(utils.Restorer.from_dir(tmp_path, device="cpu").restore(gray), plain)
    utils.update_inference_config(tmp_path / "color", chroma_gain=1.3)
    with pytest.raises(ValueError, match=r"color\.json: inference chroma_gain 1\.3"):
        utils.Restorer.from_dir(tmp_path, device="cpu")


@pytest.mark.slow
def test_restore_takes_any_uint8_image_and_refuses_other_types_clearly(tiny_weights, tmp_path, monkeypatch):
    restorer = utils.Restorer.from_dir(tiny_weights, device="cpu")
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)
    out = restorer.restore(rgb)  # an RGB photo of its own size, as restore_images takes it
    assert out.shape == (300, 200, 3) and out.dtype == np.uint8
    gray = rng.integers(0, 256, (512, 512), dtype=np.uint8)
    np.testing.assert_array_equal(restorer.restore(gray), restorer.restore_batch([gray])[0].restored)
    with pytest.raises(ValueError, match="uint8.*float32"):
        restorer.restore(rgb.astype(np.float32) / 255)
    with pytest.raises(ValueError, match="uint8.*uint16"):
        restorer.restore(gray.astype(np.uint16) * 256)
    with pytest.raises(ValueError, match=r"shape \(4, 4, 2\)"):
        restorer.restore(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="restore_batch takes uint8 gray"):
        restorer.restore_batch([rgb])
    monkeypatch.chdir(tmp_path)  # the README's snippet run outside the repository
    with pytest.raises(FileNotFoundError, match=r"weights: weights folder not found .*working directory"):
        utils.Restorer.from_dir("weights")


def test_natural_colour_keeps_the_nets_own_hues(sample_data, tiny_weights, tmp_path):
    """colour='natural' (the default) keeps the colour net's hues; 'score' remaps them towards the stored prior at
    the stored strength; both keep the luma exactly."""
    import shutil

    import cv2
    from skimage import data

    from utils.inference.hue import BINS, angle_histogram

    shutil.copytree(tiny_weights, tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("onnx"))
    rng = np.random.default_rng(1)
    prior = rng.random(BINS) + 0.1
    utils.update_inference_config(
        tmp_path / "color", hue={"strength": 1.0, "keep_hole": True, "prior": (prior / prior.sum()).tolist()}
    )
    score = utils.Restorer.from_dir(tmp_path, device="cpu", colour="score")
    natural = utils.Restorer.from_dir(tmp_path, device="cpu")
    assert score.colour_strength == 1.0 and natural.colour_strength == 0.0 and natural.hue == score.hue
    rgb = cv2.resize(data.astronaut(), (512, 512), interpolation=cv2.INTER_AREA)  # a colourful restoration
    mask = np.zeros((512, 512), bool)
    mask[200:260, 300:380] = True
    a, b = score.finish(rgb, mask), natural.finish(rgb, mask)
    assert b is rgb  # natural, no ring fill: the image as the networks made it

    def corr(x, y):
        return np.corrcoef(angle_histogram(x), angle_histogram(y))[0, 1]

    assert corr(a, rgb) < 0.9  # the score's remap moved the hues
    assert np.corrcoef(angle_histogram(a), prior)[0, 1] > np.corrcoef(angle_histogram(rgb), prior)[0, 1]
    assert np.array_equal(utils.gray_of(a)[~mask], utils.gray_of(rgb)[~mask])  # luma kept exactly
    with pytest.raises(ValueError, match="colour must be one of"):
        utils.Restorer.from_dir(tmp_path, device="cpu", colour="vivid")
