"""The one batch flow (utils.batch_restore) and the decisions that moved out of the notebooks."""
import zipfile

import numpy as np
import pandas as pd
import pytest

import utils


@pytest.fixture(scope="module")
def restorer(tiny_weights):
    return utils.Restorer.from_dir(tiny_weights, device="cpu")


@pytest.mark.slow
def test_make_submission_writes_a_validated_zip_of_the_test_inputs(sample_data, restorer, tmp_path):
    report = utils.make_submission(restorer, sample_data, tmp_path / "sub.zip", tmp_path / "png", batch_size=3,
                                   keep=True, progress=False)
    names = sorted(p.name for p in (sample_data / "test_input").iterdir())
    assert sorted(report.zipped) == names and not report.failed
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == names
    with zipfile.ZipFile(tmp_path / "sub.zip") as zf:
        assert sorted(zf.namelist()) == names
    # batched inside the flow, the same pixels as one image at a time
    gray = utils.read_image(sample_data / "test_input" / names[0], "L")
    assert np.array_equal(report.results[names[0]].restored, restorer.restore(gray))
    assert np.array_equal(utils.read_image(tmp_path / "png" / names[0], "RGB"), report.results[names[0]].restored)


def test_restore_files_skips_a_bad_source_by_name_and_keeps_input_sizes(restorer, tmp_path):
    rng = np.random.default_rng(1)

    def bad():
        raise utils.DataError("broken.png: not a readable image")

    sources = [("a.png", lambda: rng.integers(0, 256, (300, 420), dtype=np.uint8)), ("broken.png", bad),
               ("c.png", lambda: rng.integers(0, 256, (512, 512, 3), dtype=np.uint8))]
    report = utils.restore_files(restorer, sources, out_dir=tmp_path / "out", zip_path=tmp_path / "z.zip",
                                 masks_dir=tmp_path / "masks", batch_size=2, progress=False)
    assert report.failed == ["broken.png: not a readable image"]
    assert report.zipped == ["a.png", "c.png"]
    assert utils.read_image(tmp_path / "out" / "a.png").shape == (300, 420, 3)      # the input's own size
    assert utils.read_image(tmp_path / "masks" / "a.png").shape == (300, 420)
    with zipfile.ZipFile(tmp_path / "z.zip") as zf:                                 # 512x512 in the zip
        assert utils.guards.decode_image(zf.read("a.png")).size == (512, 512)


def test_nothing_restored_writes_no_zip_and_says_why(restorer, tmp_path):
    def bad():
        raise utils.DataError("x.png: truncated")

    with pytest.raises(utils.NothingRestoredError, match="x.png: truncated") as e:
        utils.restore_files(restorer, [("x.png", bad)], zip_path=tmp_path / "z.zip", progress=False)
    assert e.value.failed == ["x.png: truncated"] and not (tmp_path / "z.zip").exists()
    assert list(tmp_path.iterdir()) == []          # no temporary file left either


def test_choose_loss_reads_the_comparison_or_falls_back_to_the_measured_default():
    table = pd.DataFrame({"val_score": [0.5, 0.6], "val_hue": [0.3, 0.1]}, index=["perceptual", "l1"])
    assert utils.choose_loss("color", "auto", table) == "l1"
    assert utils.choose_loss("color", "auto", None) == "classify"      # not the regression loss that collapses
    assert utils.choose_loss("inpaint", "auto") == utils.losses.MEASURED_DEFAULT["inpaint"] == "l1+mssim"
    assert utils.choose_loss("mask", "auto", {"bce": {"val_recall": 0.8}, "dice": {"val_recall": 0.9}}) == "dice"
    assert utils.choose_loss("mask", "bce") == "bce"
    with pytest.raises(ValueError, match="inpaint loss 'l2'"):
        utils.choose_loss("inpaint", "l2")


def test_inpaint_loss_by_name_turns_its_terms_on():
    design = utils.InpaintLoss("l1+gan")
    assert design.gan_w > 0 and design.ssim_w == 0 and design.perceptual is None
    both = utils.InpaintLoss("l1+mssim+gan", ssim_weight=0.5, gan_weight=0.02)
    assert both.ssim_w == 0.5 and both.gan_w == 0.02
    with pytest.raises(ValueError, match="not in"):
        utils.InpaintLoss("gan")


def test_stage_summary_writes_the_metrics_file(tmp_path):
    history = [{"epoch": 1, "train_seconds": 2.0, "val_iou": 0.5}, {"epoch": 2, "train_seconds": 3.0, "val_iou": 0.7}]
    comparison = pd.DataFrame({"val_iou": [0.1]}, index=["bce"])
    out = utils.stage_summary("mask", history, tmp_path, "bce", "cpu", 12.5, comparison)
    import json

    saved = json.loads((tmp_path / "mask_metrics.json").read_text())
    assert saved == out and saved["val_iou"] == 0.7 and saved["train_seconds"] == 5.0
    assert saved["loss_comparison"] == {"bce": {"val_iou": 0.1}}


@pytest.mark.slow
def test_a_mask_that_cannot_be_written_fails_that_image_by_its_mask_path(restorer, tmp_path):
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "a.png").mkdir()          # a folder where the mask file should go: it cannot be written
    gray = np.random.default_rng(2).integers(0, 256, (512, 512), dtype=np.uint8)
    report = utils.restore_files(restorer, [("a.png", lambda: gray), ("b.png", lambda: gray)], out_dir=tmp_path / "out",
                                 masks_dir=tmp_path / "masks", progress=False)
    assert len(report.failed) == 1 and report.failed[0].startswith(str(tmp_path / "masks" / "a.png"))
    assert report.written == [tmp_path / "out" / "b.png"]     # a.png is not counted as restored


@pytest.mark.slow
def test_make_submission_names_the_test_input_it_could_not_read(sample_data, restorer, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(sample_data, data)
    (data / "test_input" / "TEST_001.png").write_bytes(b"not a png")
    # found by the test table's up-front header check, before any image is restored or any zip written
    with pytest.raises(utils.DataError, match=r"TEST_001.png: unreadable image .*listed in test.csv"):
        utils.make_submission(restorer, data, tmp_path / "sub.zip", progress=False)
    assert not (tmp_path / "sub.zip").exists() and not list(tmp_path.glob(".sub.zip.*"))
    # a truncated file passes the header check and fails when decoded: named, after the others were restored
    good = (sample_data / "test_input" / "TEST_001.png").read_bytes()
    (data / "test_input" / "TEST_001.png").write_bytes(good[:len(good) // 3])
    with pytest.raises(utils.batch_restore.BatchSubmissionError, match="TEST_001.png") as e:
        utils.make_submission(restorer, data, tmp_path / "sub.zip", progress=False)
    assert any("TEST_001.png" in f for f in e.value.report.failed)


@pytest.mark.slow
def test_an_interrupted_batch_leaves_no_temporary_file_and_its_report_says_how_far_it_got(restorer, tmp_path):
    """Ctrl-C (or SIGTERM, which restore.py turns into it) in the middle of a batch: the zip's temporary file is
    removed, no zip appears, and the report handed in lists what was written before the interruption."""
    gray = np.random.default_rng(3).integers(0, 256, (512, 512), dtype=np.uint8)

    def interrupt():
        raise KeyboardInterrupt

    report = utils.BatchReport()
    sources = [("a.png", lambda: gray), ("b.png", interrupt), ("c.png", lambda: gray)]
    with pytest.raises(KeyboardInterrupt):
        utils.restore_files(restorer, sources, out_dir=tmp_path / "out", zip_path=tmp_path / "z.zip", batch_size=1,
                            progress=False, report=report)
    assert report.written == [tmp_path / "out" / "a.png"] and report.zipped == ["a.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]                 # no zip, no .z.zip.*.tmp
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.png"]
