"""utils.train_stage, the one call of notebooks 02-04's training cell: in this process it builds the stage of the
notebook's config and trains it with utils.fit; what is not a config is refused before any work, in one process
as with several. (The several-process path is tests/test_notebooks.py::test_mask_notebook_trains_in_two_processes.)"""
import json

import pytest

import utils


@pytest.mark.slow
def test_one_process_builds_the_configs_stage_and_trains(sample_data, tmp_path):
    config = utils.MaskConfig(loss="bce", image_size=64, pretrained="none", epochs=1, steps_per_epoch=1,
                              batch_size=2, num_workers=0, max_train=4, val_count=2)
    run, train_ds, _ = utils.stage_data(config, sample_data, "cpu")
    stage, history = utils.train_stage(config, train_ds, ckpt_dir=tmp_path, device="cpu", progress=False)
    assert stage.loss.kind == "bce" and stage.config == config and str(stage.device) == "cpu"
    assert [h["epoch"] for h in history] == [1] and history[0]["images"] == 2
    assert (tmp_path / "mask.safetensors").is_file() and (tmp_path / "mask.train_state.pt").is_file()
    # the config is saved beside the checkpoint and in the train state
    assert json.loads((tmp_path / "mask.json").read_text())["train_config"] == config.to_dict()
    state = utils.checkpoints.load_train_state(tmp_path / "mask.train_state.pt")
    assert state["settings"]["config"] == config.to_dict()


@pytest.mark.parametrize("num_processes", [1, 2])
def test_what_is_not_a_config_is_refused_before_any_work(tmp_path, num_processes):
    with pytest.raises(TypeError, match="train_stage takes a stage's config"):
        utils.train_stage({"stage": "mask", "lr": 1e-3}, None, ckpt_dir=tmp_path, num_processes=num_processes)
    with pytest.raises(utils.ConfigError, match=r"MaskConfig: unknown field rebalance_lambda \(a field of the color "
                                                r"stage\); its fields: amp, batch_size, "):
        utils.MaskConfig(rebalance_lambda=0.5)
    assert not list(tmp_path.iterdir())
