"""The luminance inpainter and the GCompris corpus reader: tests that can fail."""
import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import utils
from utils.core.metric import masked_ssim_term
from utils.core.models import InpaintNet
from utils.data.qt_resources import RccError, read_rcc, write_rcc
from utils.inference.prefills import prefill
from utils.training.losses import InpaintLoss, masked_ssim

ROOT = Path(__file__).resolve().parent.parent


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------- the Qt resource reader
@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("version", [1, 2, 3])
def test_rcc_reader_reads_back_what_was_written(tmp_path, compress, version):
    files = {"gcompris/src/activities/a/resource/cat.webp": b"\x00cat" * 500,
             "gcompris/src/activities/a/resource/README": b"Files: cat.webp\n",
             "gcompris/src/activities/a/b/deep/x.bin": bytes(range(256)),
             "top.txt": "ü and ☃".encode()}
    path = write_rcc(tmp_path / "t.rcc", files, compress=compress, version=version)
    assert path.read_bytes()[:4] == b"qres"
    assert dict(read_rcc(path)) == files
    if compress:    # really compressed: the repetitive file takes less room than its bytes
        assert path.stat().st_size < 2000


def test_rcc_reader_refuses_other_files(tmp_path):
    bad = tmp_path / "x.rcc"
    bad.write_bytes(b"PK\x03\x04 not a resource file at all")
    with pytest.raises(RccError, match="x.rcc: not a Qt resource file"):
        list(read_rcc(bad))
    good = write_rcc(tmp_path / "y.rcc", {"a/b.txt": b"hello" * 100})
    (tmp_path / "cut.rcc").write_bytes(good.read_bytes()[:40])
    with pytest.raises(RccError, match="cut.rcc"):
        list(read_rcc(tmp_path / "cut.rcc"))


# ---------------------------------------------------------------- credits -> manifest licence column
CREDITS = """Copyright: Timothee Giet, 2018
License: CC-BY-SA 4.0
Files:
question.svg

Copyright: Kurt Kaiser
License: CC0-1.0
Source: https://commons.wikimedia.org/wiki/File:American_Bison_9.jpg
Files:
bison.webp

Copyright: Someone Else
Source: https://example.org/owl
License: CC-BY-2.0
Comments: cropping
Files: owl.webp other.webp

Copyright: 2000, 2008 Bruno Coudoin and others
License: CC-BY-SA 4.0
Louvre_0.webp
Louvre_background.webp
Comment: based on a photo by Benh LIEU SONG, license CC-BY-SA 3.0, source at https://commons.wikimedia.org/wiki/File:Louvre.jpg
"""


def photo_bytes(seed: int, size=(400, 320)) -> bytes:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3)).astype(np.uint8)
    im = Image.fromarray(base).resize(size, Image.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, "WEBP", quality=90)
    return buf.getvalue()


def test_credits_give_each_photo_its_author_and_licence_in_the_manifest(tmp_path):
    bc = load_tool("build_corpus")
    parsed = bc.parse_credits(CREDITS)
    assert parsed["bison.webp"] == {"author": "Kurt Kaiser", "license": "CC0-1.0",
                                    "url": "https://commons.wikimedia.org/wiki/File:American_Bison_9.jpg"}
    assert parsed["other.webp"]["license"] == "CC-BY-2.0" and parsed["question.svg"]["author"] == "Timothee Giet, 2018"
    # a block that lists its files without a Files: line, its source in the comment
    assert parsed["Louvre_background.webp"] == {
        "author": "2000, 2008 Bruno Coudoin and others",
        "license": "CC-BY-SA 4.0",
        "url": "https://commons.wikimedia.org/wiki/File:Louvre.jpg",
    }

    # a GCompris package tree with one activity's resource file, as dpkg-deb -x unpacks it
    root = tmp_path / "unpacked" / bc.GCOMPRIS
    rcc_dir = root / "usr" / "share" / "gcompris-qt" / "rcc"
    rcc_dir.mkdir(parents=True)
    prefix = "gcompris/src/activities/explore_world_animals/resource/animals"
    write_rcc(
        rcc_dir / "explore_world_animals.rcc",
        {
            f"{prefix}/README": CREDITS.encode(),
            f"{prefix}/bison.webp": photo_bytes(1),
            f"{prefix}/owl.webp": photo_bytes(2),
        },
    )
    for act in bc.GCOMPRIS_ACTIVITIES:  # the other activities: empty resource files
        if act != "explore_world_animals":
            write_rcc(rcc_dir / f"{act}.rcc", {"gcompris/src/activities/x/README": b""})
    bc.extract_gcompris(root, tmp_path / "unpacked" / "gcompris-photos")
    info = {p: i for p, i in bc.candidates(tmp_path).items() if i["package"] == bc.GCOMPRIS}
    by_name = {Path(p).name: i for p, i in info.items()}
    assert by_name["bison.webp"]["license"] == "CC0-1.0" and by_name["bison.webp"]["author"] == "Kurt Kaiser"
    assert by_name["owl.webp"]["license"] == "CC-BY-2.0"
    photos = sorted(info, key=lambda p: Path(p).name)
    out = utils.build_sample_dataset(
        tmp_path / "ds",
        photos=[Path(p) for p in photos],
        n_train=2,
        n_test=1,
        test_photos=[Path(photos[1])],
        photo_info=info,
        min_side=240,
    )
    import pandas as pd

    man = pd.read_csv(out / "manifest.csv")
    assert set(man["license"]) == {"CC0-1.0", "CC-BY-2.0"}
    assert dict(zip(man["source"].map(lambda s: Path(s).name), man["author"]))["bison.webp"] == "Kurt Kaiser"


def test_scene_keys_keep_one_landmark_together():
    bc = load_tool("build_corpus")
    a = bc.scene_key("/x/categorization/resource/images/monuments/christTheRedeemer.webp", bc.GCOMPRIS)
    b = bc.scene_key("/x/explore_monuments/resource/wonders/christTheRedeemer.webp", bc.GCOMPRIS)
    c = bc.scene_key("/x/details/resource/image/EgeskovSlotSpejling_background.webp", bc.GCOMPRIS)
    assert a == b and c == "egeskovslotspejling"
    frames = {bc.scene_key(f"/m/campus/image{i:04d}.jpg", "mvtb-data") for i in range(3)}
    assert len(frames) == 1


def test_validation_split_keeps_scenes_whole():
    groups = ["a"] * 5 + ["b"] * 3 + ["c"] * 4 + ["d"] * 6 + ["e"] * 2
    tr, va = utils.split_indices(len(groups), 0.2, seed=3, groups=groups)
    assert len(va) > 0 and len(tr) > 0 and sorted(np.r_[tr, va]) == list(range(len(groups)))
    assert not {groups[i] for i in tr} & {groups[i] for i in va}


# ---------------------------------------------------------------- the inpainter
def test_masked_ssim_loss_agrees_with_the_metric():
    rng = np.random.default_rng(0)
    from skimage import data

    gt = data.astronaut()[:512, :512]
    pred = np.clip(gt.astype(int) + rng.integers(-40, 40, gt.shape), 0, 255).astype(np.uint8)
    pred[0, 0], pred[1, 1] = 0, 255  # the metric's data range is the prediction's: make it 255
    mask = utils.sample_damage(rng).mask
    ref, _ = masked_ssim_term(gt, pred, mask)
    t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255  # noqa: E731
    ours = masked_ssim(t(pred), t(gt), torch.from_numpy(mask)[None, None].float())
    assert abs(float(ours) - ref) < 1e-4
    assert float(masked_ssim(t(gt), t(gt), torch.from_numpy(mask)[None, None].float())) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("block", ["ffc", "gated"])
def test_generator_loss_falls_on_a_fixed_batch(sample_data, block):
    torch.manual_seed(0)
    stage = utils.InpaintStage(loss="l1+mssim", lr=2e-3, image_size=128, block=block)
    base = utils.SyntheticDamageDataset([sample_data / "train_gt" / f"TRAIN_{i:05d}.png" for i in range(4)])
    ds = utils.InpaintDataset(base, 128)
    batch = torch.utils.data.default_collate([ds[i] for i in range(4)])
    assert batch["image"].shape == (4, 1, 128, 128) and batch["target"].shape == (4, 1, 128, 128)
    stage.train_mode()
    losses = [stage.train_step(batch)["loss"] for _ in range(10)]
    assert all(np.isfinite(losses)) and min(losses[-3:]) < 0.9 * losses[0]


@pytest.mark.slow
def test_the_designs_l1_gan_loss_stays_available(sample_data):
    stage = utils.InpaintStage(loss="l1+gan", image_size=128)
    assert "inpaint_disc" in stage.nets and InpaintLoss("l1+gan").gan_w > 0
    base = utils.SyntheticDamageDataset([sample_data / "train_gt" / f"TRAIN_{i:05d}.png" for i in range(2)])
    batch = torch.utils.data.default_collate([utils.InpaintDataset(base, 128)[i] for i in range(2)])
    logs = stage.train_step(batch)
    assert {"d_loss", "gan", "l1"} <= set(logs)


def test_inpaint_changes_only_the_hole_and_keeps_the_chroma(sample_data):
    torch.manual_seed(0)
    net = InpaintNet("ffc").eval()
    torch.nn.init.normal_(net.head.weight, std=0.2)  # an untrained net would return the pre-fill itself
    rgb = utils.read_image(sample_data / "test_gt" / "TEST_000.png", "RGB")
    mask = np.asarray(utils.read_image(sample_data / "test_mask" / "TEST_000.png", "L")) > 0
    gray = utils.read_image(sample_data / "test_input" / "TEST_000.png", "L")
    out_gray, out_rgb = utils.inpaint(net, [gray, rgb], [mask, mask])
    assert np.array_equal(out_gray[~mask], gray[~mask]) and np.array_equal(out_rgb[~mask], rgb[~mask])
    assert not np.array_equal(out_gray[mask], prefill(gray, mask)[mask])  # the net did something
    from utils.inference.color import rgb_to_cbcr_np

    rgb_to_cbcr_array = lambda x: rgb_to_cbcr_np(x) + 0.5  # noqa: E731   (0.5 = neutral)

    # the hole's new luminance is the gray fill exactly (PIL luma), and its chroma is the input's own
    assert np.array_equal(utils.gray_of(out_rgb)[mask], utils.inpaint(net, [utils.gray_of(rgb)], [mask])[0][mask])
    cb_in, cb_out = rgb_to_cbcr_array(rgb)[mask], rgb_to_cbcr_array(out_rgb)[mask]
    sat = np.abs(cb_out - 0.5).max(-1) < 0.2  # away from the gamut's edge, where compose_rgb must desaturate
    assert np.abs(cb_in[sat] - cb_out[sat]).mean() < 0.02


def test_prefill_continues_the_surroundings_and_leaves_the_rest_alone():
    y, x = np.mgrid[0:256, 0:256]
    ramp = (x * 0.8 + y * 0.2).astype(np.uint8)
    mask = np.zeros((256, 256), bool)
    mask[80:180, 60:200] = True
    damaged = np.where(mask, np.uint8(0), ramp)
    out = prefill(damaged, mask)
    assert np.array_equal(out[~mask], ramp[~mask])
    err = np.abs(out[mask].astype(int) - ramp[mask]).mean()
    assert err < 10 and out[mask].std() > 10  # the ramp is continued (a black fill errs by ~110, a flat one by ~25)


def test_prefill_never_reads_the_holes_pixels():
    """Whatever the hole holds (the damage's fill value, or the truth in training), the pre-fill is the same: a
    partly covered low-resolution pixel counts as unknown."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:512, 0:512]
    img = (128 + 60 * np.sin(x / 40.0) + 40 * np.cos(y / 25.0)).astype(np.uint8)
    mask = utils.sample_damage(rng).mask
    dark, bright, noisy = (np.where(mask, v, img).astype(np.uint8) for v in (0, 255, rng.integers(0, 256, img.shape)))
    outs = [prefill(im, mask) for im in (dark, bright, noisy, img)]
    assert all(np.array_equal(outs[0], o) for o in outs[1:])
