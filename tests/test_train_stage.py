"""utils.train_stage, the one call of notebooks 02-04's training cell: in this process it builds the stage with the
notebook's make_stage(loss, device) and trains it with utils.fit; options that no training process would know are
refused before any work, in one process as with several. (The several-process path is
tests/test_notebooks.py::test_mask_notebook_trains_in_two_processes.)"""
import pytest
import torch

import utils


@pytest.mark.slow
def test_one_process_builds_with_make_stage_and_trains(sample_data, tmp_path):
    run = utils.prepare_run(sample_data, "cpu", max_train=4, max_val=2)
    train_ds, _ = utils.train_val_datasets(run["train_paths"], run["val_paths"], 64, train_source="synthetic",
                                           train_table=run["train_table"], data_dir=run["data_dir"])
    built = []

    def make_stage(kind, device=None):
        built.append((kind, device))
        return utils.MaskStage(loss=kind, lr=1e-3, size=64, pretrained="none", device=device or "cpu")

    stage, history = utils.train_stage("mask", make_stage, train_ds, loss="bce", ckpt_dir=tmp_path, epochs=1,
                                       steps_per_epoch=1, batch_size=2, device="cpu", progress=False,
                                       data_dir=sample_data, image_size=64, lr=1e-3)
    assert built == [("bce", torch.device("cpu"))] and stage.loss.kind == "bce"
    assert [h["epoch"] for h in history] == [1] and history[0]["images"] == 2
    assert (tmp_path / "mask.safetensors").is_file() and (tmp_path / "mask.train_state.pt").is_file()


@pytest.mark.parametrize("num_processes", [1, 2])
def test_unknown_option_is_refused_before_any_work(tmp_path, num_processes):
    def make_stage(kind, device=None):
        raise AssertionError("no stage may be built")

    with pytest.raises(TypeError, match=r"mask: unknown option\(s\) \['rebalance_lambda'\]"):
        utils.train_stage("mask", make_stage, None, loss="bce", ckpt_dir=tmp_path, epochs=1,
                          num_processes=num_processes, rebalance_lambda=0.5)
    with pytest.raises(ValueError, match="stage must be one of"):
        utils.train_stage("colour", make_stage, None, loss="bce", ckpt_dir=tmp_path, epochs=1)
    assert not list(tmp_path.iterdir())
