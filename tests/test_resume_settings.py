"""A training run resumed with other settings than its checkpoint's stops and says which: the fields of the
stage's config that differ, by name, and the training data (train_source, the files' names and sizes; the same
data moved to another folder resumes), from the notebooks (utils.fit) and from tools/train.py (one line, exit code
2, naming --no-resume); a checkpoint stored before a setting existed is not refused for lacking it, and one
stored before configs existed is compared on what it recorded."""

import pytest
from conftest import run_cli

import utils
from utils.core.checkpoints import load_train_state, save_train_state
from utils.training.loop import SettingsChangedError


def datasets(data, source="synthetic", stroke_share=0.0):
    run = utils.prepare_run(data, "cpu", max_train=4, max_val=2)
    train, _ = utils.train_val_datasets(run["train_paths"], run["val_paths"], 64, train_source=source,
                                        train_table=run["train_table"], data_dir=run["data_dir"],
                                        stroke_share=stroke_share)
    return train


def fit(ds, ckpt, epochs, steps=1, **fields):
    stage = utils.MaskStage(**{"loss": "bce", "lr": 1e-3, "image_size": 64, "pretrained": "none", "num_workers": 0,
                               **fields})
    return utils.fit(stage, ds, epochs=epochs, ckpt_dir=ckpt, batch_size=2, steps_per_epoch=steps, progress=False)


@pytest.fixture(scope="module")
def other_data(tmp_path_factory):
    """Other images under the same names (another sample dataset)."""
    out = tmp_path_factory.mktemp("other") / "data"
    utils.build_sample_dataset(out, n_train=12, n_test=4, seed=7, overwrite=True)
    return out


def test_data_settings_name_the_source_and_the_data_folder(sample_data, tmp_path):
    from utils.training.loop import data_settings

    got = data_settings(datasets(sample_data))
    assert got["train_source"] == "synthetic" and got["data_dir"] == str(sample_data.resolve())
    assert got["data"].startswith("4 files, ")
    assert data_settings(datasets(sample_data, "both"))["train_source"] == "both"
    both = data_settings(utils.InpaintDataset(datasets(sample_data, "provided"), 64))
    assert both["train_source"] == "provided" and both["data_dir"] == str(sample_data.resolve())
    assert both["data"].startswith("8 files, ")             # inputs and ground truths
    (tmp_path / "link").symlink_to(sample_data)             # the resolved folder: a link to it is the same data
    assert data_settings(datasets(tmp_path / "link")) == got
    assert data_settings([1, 2, 3]) == {}                    # a data set of another kind: nothing to compare


@pytest.mark.slow
def test_resume_on_other_data_or_another_source_is_refused(sample_data, other_data, own_data, tmp_path):
    ds = datasets(sample_data)
    fit(ds, tmp_path, 1)
    with pytest.raises(SettingsChangedError, match=r"mask\.train_state\.pt.*train_source: synthetic -> provided"):
        fit(datasets(sample_data, "provided"), tmp_path, 2)
    with pytest.raises(SettingsChangedError, match=rf"data: 4 files, \w+ -> 4 files, \w+ \(data folder "
                                                   rf"{sample_data.resolve()} -> {other_data.resolve()}\)"):
        fit(datasets(other_data), tmp_path, 2)
    assert [h["epoch"] for h in fit(datasets(own_data), tmp_path, 2)] == [1, 2]   # the same data, moved: resumes
    # more epochs and longer epochs continue the run (no schedule depends on them)
    assert [h["epoch"] for h in fit(ds, tmp_path, 3, steps=2)] == [1, 2, 3]


@pytest.mark.slow
def test_resume_with_another_damage_mix_is_refused(sample_data, tmp_path):
    from utils.training.loop import data_settings

    assert data_settings(datasets(sample_data, stroke_share=0.3))["damage"]["stroke_share"] == 0.3
    assert "damage" not in data_settings(datasets(sample_data, "provided"))      # no synthetic damage
    fit(datasets(sample_data, stroke_share=0.3), tmp_path, 1)
    with pytest.raises(SettingsChangedError, match=r"damage: .*'stroke_share': 0\.3.* -> .*'stroke_share': 0\.0"):
        fit(datasets(sample_data), tmp_path, 2)
    assert [h["epoch"] for h in fit(datasets(sample_data, stroke_share=0.3), tmp_path, 2)] == [1, 2]


@pytest.mark.slow
def test_an_older_checkpoint_without_the_data_settings_resumes(sample_data, other_data, tmp_path):
    fit(datasets(sample_data), tmp_path, 1)
    path = tmp_path / "mask.train_state.pt"
    state = load_train_state(path)
    for key in ("train_source", "data", "data_dir"):        # as a checkpoint written before they were recorded
        del state["settings"][key]
    save_train_state(path, state)
    assert len(fit(datasets(other_data, "provided"), tmp_path, 2)) == 2
    assert load_train_state(path)["settings"]["train_source"] == "provided"    # recorded from now on


@pytest.mark.slow
def test_train_cli_resume_with_other_settings_is_one_line_and_exit_code_2(sample_data, other_data, tmp_path,
                                                                        no_project_env):
    common = ["--stage", "mask", "--cpu", "--steps-per-epoch", "1", "--batch-size", "2", "--num-workers", "0",
              "--val-count", "1", "--image-size", "64", "--pretrained", "none", "--no-validate", "--loss", "bce",
              "--ckpt-dir", str(tmp_path / "ckpt")]

    def train(*args):
        return run_cli("tools/train.py", *common, *args)

    first = train("--data-dir", str(sample_data), "--epochs", "1")
    assert first.returncode == 0, first.stderr[-3000:]
    proc = train("--data-dir", str(other_data), "--epochs", "2", "--train-source", "provided")
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    err = proc.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert str(tmp_path / "ckpt" / "mask.train_state.pt") in err and "--no-resume" in err and "--ckpt-dir" in err
    assert "train_source: synthetic -> provided" in err and f"-> {other_data.resolve()}" in err
    assert "resume=False" not in err
    again = train("--data-dir", str(other_data), "--epochs", "1", "--train-source", "provided", "--no-resume")
    assert again.returncode == 0, again.stderr[-3000:]


@pytest.mark.slow
def test_a_resume_with_other_config_fields_names_each(sample_data, tmp_path):
    ds = datasets(sample_data)
    fit(ds, tmp_path, 1)
    with pytest.raises(SettingsChangedError) as e:
        fit(ds, tmp_path, 2, lr=2e-3, encoder="tf_efficientnet_lite1")
    assert e.value.lines == "encoder: tf_efficientnet_lite0 -> tf_efficientnet_lite1; lr: 0.001 -> 0.002", e.value.lines
    assert set(e.value.changes) == {"encoder", "lr"}
    # fields that may change between the runs: more epochs, other loader workers, another precision
    assert len(fit(ds, tmp_path, 2, amp="off", val_count=5, repeats=2)) == 2


def test_the_compared_fields():
    from utils.training.loop import changed_settings

    config = utils.InpaintConfig()
    old = {"config": config.to_dict(), "train_source": "synthetic", "data": "4 files, ab", "data_dir": "/a"}
    new = {"config": config.replace(epochs=9, steps_per_epoch=3, num_workers=0, amp="off", compare_steps=1,
                                    photos="/elsewhere").to_dict(), "train_source": "synthetic", "data": "4 files, ab",
           "data_dir": "/b"}
    assert changed_settings(old, new, "inpaint") == {}         # (the data folder is shown, not compared)
    new["config"] = config.replace(block="gated", d_lr=1e-4).to_dict()
    assert changed_settings(old, new, "inpaint") == {"block": ("ffc", "gated"), "d_lr": (2e-4, 1e-4)}
    # a field that the stored config lacks (added since) is not compared; a stored field unknown now is ignored
    old["config"] = {k: v for k, v in config.to_dict().items() if k != "block"} | {"retired": 1}
    assert changed_settings(old, new, "inpaint") == {"d_lr": (2e-4, 1e-4)}
    # the data set as built decides train_source, whatever the config says
    new = {"config": config.replace(train_source="photos").to_dict(), "train_source": "synthetic",
           "data": "4 files, ab"}
    assert changed_settings(old, new, "inpaint") == {}


def legacy_settings(**changes) -> dict:
    """A train state's settings as a MaskStage(loss="bce", lr=1e-3, size=64, pretrained="none") recorded them
    before configs existed (Stage.settings() with fit's batch size, seed and data)."""
    return {"loss": {"training": True, "kind": "bce", "w": 0.1}, "lr": {"opt": [0.001]},
            "nets": {"mask": {"arch": "MaskNet", "kwargs": {"pretrained": "none"}, "stage": "mask"}}, "size": 64,
            "batch_size": 2, "seed": 0, **changes}


@pytest.mark.slow
def test_a_train_state_from_before_configs_is_compared_on_what_it_recorded(sample_data, tmp_path):
    """An old train state (no config) resumes when the loss, learning rate, net, size, batch size, seed,
    init_weights and data it recorded agree, and is refused naming the config fields that do not; the resumed
    run records its whole config."""
    from utils.training.loop import legacy_fields

    assert legacy_fields("mask", legacy_settings()) == {"loss": "bce", "lr": 0.001, "pretrained": "none",
                                                        "image_size": 64, "batch_size": 2, "seed": 0,
                                                        "init_weights": None}
    inpaint = {"loss": {"kind": "l1+gan", "hole_w": 6.0, "ssim_w": 0.0, "gan_w": 0.01},
               "lr": {"g": [1e-3], "d": [2e-4]},
               "nets": {"inpaint": {"arch": "InpaintNet", "kwargs": {"block": "ffc"}}},
               "init_weights": "/w"}
    assert legacy_fields("inpaint", inpaint) == {
        "loss": "l1+gan",
        "hole_weight": 6.0,
        "gan_weight": 0.01,
        "lr": 1e-3,
        "d_lr": 2e-4,
        "block": "ffc",
        "init_weights": "/w",
    }
    ds = datasets(sample_data)
    fit(ds, tmp_path, 1)
    path = tmp_path / "mask.train_state.pt"
    state = load_train_state(path)
    data = {k: state["settings"][k] for k in ("train_source", "data", "data_dir")}
    state["settings"] = legacy_settings(**data, lr={"opt": [0.01]})
    save_train_state(path, state)
    with pytest.raises(SettingsChangedError, match=r"lr: 0\.01 -> 0\.001\)"):
        fit(ds, tmp_path, 2)
    state["settings"] = legacy_settings(**data)
    save_train_state(path, state)
    assert [h["epoch"] for h in fit(ds, tmp_path, 2)] == [1, 2]
    assert load_train_state(path)["settings"]["config"]["lr"] == 0.001  # recorded from now on
