"""A training run resumed with other settings than its checkpoint's stops and says which: the training data
(train_source, the files' names and sizes; the same data moved to another folder resumes) too, from the notebooks (utils.fit) and from tools/train.py (one line, exit code
2, naming --no-resume); a checkpoint stored before a setting existed is not refused for lacking it."""

import pytest

import utils
from utils.checkpoints import load_train_state, save_train_state
from utils.training import SettingsChangedError
from conftest import run_cli



def datasets(data, source="synthetic", stroke_share=0.0):
    run = utils.prepare_run(data, "cpu", max_train=4, max_val=2)
    train, _ = utils.train_val_datasets(run["train_paths"], run["val_paths"], 64, train_source=source,
                                        train_table=run["train_table"], data_dir=run["data_dir"],
                                        stroke_share=stroke_share)
    return train


def fit(ds, ckpt, epochs, steps=1):
    stage = utils.MaskStage(loss="bce", lr=1e-3, size=64, pretrained="none")
    return utils.fit(stage, ds, epochs=epochs, ckpt_dir=ckpt, batch_size=2, steps_per_epoch=steps, progress=False)


@pytest.fixture(scope="module")
def other_data(tmp_path_factory):
    """Other images under the same names (another sample dataset)."""
    out = tmp_path_factory.mktemp("other") / "data"
    utils.build_sample_dataset(out, n_train=12, n_test=4, seed=7, overwrite=True)
    return out


def test_data_settings_name_the_source_and_the_data_folder(sample_data, tmp_path):
    from utils.training import data_settings

    got = data_settings(datasets(sample_data))
    assert got["train_source"] == "synthetic" and got["data_dir"] == str(sample_data.resolve())
    assert got["data"].startswith("4 files, ")
    assert data_settings(datasets(sample_data, "both"))["train_source"] == "both"
    both = data_settings(utils.InpaintDataset(datasets(sample_data, "provided")))
    assert both["train_source"] == "provided" and both["data_dir"] == str(sample_data.resolve())
    assert both["data"].startswith("8 files, ")             # inputs and ground truths
    (tmp_path / "link").symlink_to(sample_data)             # the resolved folder: a link to it is the same data
    assert data_settings(datasets(tmp_path / "link")) == got
    assert data_settings([1, 2, 3]) == {}                    # a data set of another kind: nothing to compare


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


def test_resume_with_another_damage_mix_is_refused(sample_data, tmp_path):
    from utils.training import data_settings

    assert data_settings(datasets(sample_data, stroke_share=0.3))["damage"]["stroke_share"] == 0.3
    assert "damage" not in data_settings(datasets(sample_data, "provided"))      # no synthetic damage
    fit(datasets(sample_data, stroke_share=0.3), tmp_path, 1)
    with pytest.raises(SettingsChangedError, match=r"damage: .*'stroke_share': 0\.3.* -> .*'stroke_share': 0\.0"):
        fit(datasets(sample_data), tmp_path, 2)
    assert [h["epoch"] for h in fit(datasets(sample_data, stroke_share=0.3), tmp_path, 2)] == [1, 2]


def test_an_older_checkpoint_without_the_data_settings_resumes(sample_data, other_data, tmp_path):
    fit(datasets(sample_data), tmp_path, 1)
    path = tmp_path / "mask.train_state.pt"
    state = load_train_state(path)
    for key in ("train_source", "data", "data_dir"):        # as a checkpoint written before they were recorded
        del state["settings"][key]
    save_train_state(path, state)
    assert len(fit(datasets(other_data, "provided"), tmp_path, 2)) == 2
    assert load_train_state(path)["settings"]["train_source"] == "provided"    # recorded from now on


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


def test_a_default_spelled_out_is_not_another_network():
    """tools/train.py records the colour net without its default encoder, notebook 03 with it: the notebook
    refused to resume (and so to calibrate) a checkpoint that tools/train.py had trained. Another encoder is
    still another network."""
    from utils.training import changed_settings

    def nets(**kwargs):
        return {"nets": {"color": {"arch": "ColorizationNet", "kwargs": {"head": "classes", **kwargs}}}}

    assert changed_settings(nets(), nets(encoder="tf_efficientnet_lite0")) == {}
    assert list(changed_settings(nets(), nets(encoder="tf_efficientnet_lite1"))) == ["nets"]
    assert list(changed_settings(nets(), nets(head="regression"))) == ["nets"]
