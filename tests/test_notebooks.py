"""Every notebook executes top to bottom in smoke mode, through the same runner as the main command, its kernel
started in notebooks/ as Jupyter starts it (paths resolve from the repository, not the working directory)."""
import ast
import importlib.util
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_tiny_weights, run_cli

import utils

pytestmark = [pytest.mark.notebook, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent


def runner_args(only, data, out, ckpt, *params) -> list[str]:
    """tools/run_notebooks.py's arguments: --smoke; out/ckpt None: not passed (the environment decides)."""
    args = ["--smoke", "--data-dir", str(data), *(["--out", str(out)] if out is not None else []),
            *(["--ckpt-dir", str(ckpt)] if ckpt is not None else []), "--only", *only]
    for p in params:
        args += ["-p", p]
    return args


def run_notebooks(only, data, out, ckpt, *params, cwd=ROOT, env=None):
    """tools/run_notebooks.py in a process of its own, as `make run` starts it."""
    cmd = [sys.executable, str(ROOT / "tools" / "run_notebooks.py"), *runner_args(only, data, out, ckpt, *params)]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGE_RESTORE_")}
    full_env.update(env or {})
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=cwd, env=full_env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # the kernels run over an encrypted channel: no "running over TCP without encryption" warning for each notebook
    assert "eavesdropping" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    return proc


def load_runner():
    """tools/run_notebooks.py as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("run_notebooks_under_test", ROOT / "tools" / "run_notebooks.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    return runner


def test_sample_run_trains_the_steps_it_says():
    """The short sample-data runs of `make run` (the configs' preset 'sample') train steps_per_epoch batches each
    epoch: utils.fit cuts an epoch to the batches its data holds (22 training images make 2 batches of 8), so the
    sample dataset's training split, times `repeats`, must hold that many batches; else "2 epochs x 6 steps" is
    really 2 x 2."""
    from utils.data.datasets import split_indices

    n_images = inspect.signature(utils.build_sample_dataset).parameters["n_train"].default
    n_fit = len(split_indices(n_images)[0])          # prepare_run's train split of the sample's train.csv
    for stage in load_runner().TRAINING.values():
        c = utils.config_class(stage).preset("sample")
        batches = n_fit * c.repeats // c.batch_size      # drop_last: only full batches
        assert batches >= c.steps_per_epoch, (stage, n_fit, c)


def test_smoke_mode_is_a_preset_or_a_smoke_block():
    """A `smoke` parameter that changes nothing is a promise not kept: each notebook that declares it sets something
    in an `if smoke:` block (01, 05: tiny settings); the training notebooks take the configs' `preset` instead and
    hold no code that changes their settings."""
    runner = load_runner()
    for name in runner.NOTEBOOKS:
        path = ROOT / "notebooks" / f"{name}.ipynb"
        declared = runner.declared_parameters(path)
        cells = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        smoke_blocks = [n for src in cells for n in ast.walk(ast.parse(src)) if isinstance(n, ast.If)
                        and isinstance(n.test, ast.Name) and n.test.id == "smoke"]
        if name in runner.TRAINING:
            assert {"preset", "settings"} <= declared and "smoke" not in declared and not smoke_blocks, name
        elif "smoke" in declared:
            assert smoke_blocks, f"{name}: declares smoke but no `if smoke:` block sets anything"


def test_notebooks_carry_the_metadata_their_kernel_reports():
    """Jupyter Lab writes the kernel's kernelspec and language_info into a notebook's metadata when its kernel starts;
    metadata that differs marks the notebook modified ("unsaved") the moment it opens. So each notebook carries what
    the project's kernel (the venv's ipykernel, kernelspec python3) reports; only Python's patch version may differ
    between machines (Lab then updates it). nbformat 4.5 with a unique id per cell, as Lab writes it."""
    from ipykernel.ipkernel import IPythonKernel
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    kernelspec = {"display_name": spec.display_name, "language": spec.language, "name": "python3"}
    reported = dict(IPythonKernel.language_info)
    for name in load_runner().NOTEBOOKS:
        nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
        assert (nb["nbformat"], nb["nbformat_minor"]) == (4, 5), name
        ids = [c.get("id") for c in nb["cells"]]
        assert None not in ids and len(set(ids)) == len(ids), name
        assert nb["metadata"]["kernelspec"] == kernelspec, name
        info = dict(nb["metadata"]["language_info"])
        version = info.pop("version", "")
        assert info == {k: v for k, v in reported.items() if k != "version"}, name
        assert version.split(".")[:2] == reported["version"].split(".")[:2], (name, version)


def test_make_venv_installs_quietly(tmp_path):
    """The first `make run` creates the venv: every pip call quiet, and the editable install of the project at -qq,
    where pip 26 would still show setuptools' boxed note on editable installs (a BuildBackendWarning, shown at -q)."""
    proc = subprocess.run(["make", "-n", "-B", "venv", f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    pip = [line.split() for line in proc.stdout.splitlines() if " -m pip install" in line]
    assert len(pip) == 3 and all({"-q", "-qq"} & set(words) for words in pip), proc.stdout
    editable = next(words for words in pip if "-e" in words)
    assert "-qq" in editable, proc.stdout


def test_the_runs_last_lines_say_where_the_images_are_and_how_the_score_reads(tmp_path):
    runner = load_runner()
    png = tmp_path / "png"
    png.mkdir()
    for i in range(3):
        (png / f"TEST_00{i}.png").write_bytes(b"")
    summary = {"zip": str(tmp_path / "submission.zip"), "validated": True,
               "score": {"score": 0.55, "ssim": 0.83, "masked_ssim": 0.52, "hue": 0.44},
               "floors": {"gray copy": {"score": 0.3641}, "Telea, known mask": {"score": 0.4946}}}
    text = "\n".join(runner.final_report(summary, png, tmp_path / "runs", sample=True))
    assert f"restored images: {png}/ (3 PNGs)" in text
    assert f"submission zip:  {tmp_path / 'submission.zip'} (validated)" in text
    assert "score on the sample test set: 0.5500  (SSIM 0.8300, masked SSIM 0.5200, hue 0.4400)" in text
    w = utils.metric.WEIGHTS
    assert (f"{w['ssim']} x SSIM + {w['masked_ssim']} x SSIM inside the hole + {w['hue']} x hue-histogram"
            in text) and "higher is better, 1.0 = identical to the truth" in text
    assert ("for scale, on the same 3 test images: the gray input itself 0.3641; OpenCV inpainting given the true "
            "hole 0.4946") in text
    summary["score"] = None                          # the competition's test set: no truth here
    assert runner.final_report(summary, png, tmp_path, sample=False)[-1].startswith("score: none (no test_gt/")


@pytest.fixture(scope="module")
def nb_env(sample_data, tmp_path_factory):
    base = tmp_path_factory.mktemp("nb")
    return {"data": sample_data, "out": base / "runs", "ckpt": base / "ckpt"}


def runner_refuses(*args):
    """tools/run_notebooks.py's main in this process (it refuses before any work; the test asks for no_project_env)."""
    proc = run_cli("tools/run_notebooks.py", *runner_args(*args))
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.parametrize(
    "only, params, message, listed",
    [
        (["9"], [], "--only 9: no such notebook (one of 01, 02, 03, 04, 05)", None),
        (["01", "7"], [], "--only 7: no such notebook", None),
        (
            ["01"],
            ["max_filez=3"],
            "-p max_filez: not a parameter of 01_eda (did you mean max_files?",
            "n_damage_samples",
        ),
        (
            ["02", "03"],
            ["rebalance_lambda=0.3", "epoch=2"],
            "-p epoch: not a parameter of 02_train_mask, 03_train_colorization",
            "steps_per_epoch",
        ),
        (["01"], ["max_files"], "argument -p/--param: expected key=value, got 'max_files'", None),
        (["01"], ["=3"], "argument -p/--param: expected key=value, got '=3'", None),
    ],
    ids=["only-9", "only-7", "undeclared", "undeclared-by-all", "no-equals", "no-key"],
)
def test_runner_rejects_bad_arguments_before_any_work(tmp_path, only, params, message, listed, no_project_env):
    """An unknown notebook number or a parameter that no chosen notebook declares is an error (exit 2) naming it,
    before the data is looked at or built (the data dir here is not even there)."""
    proc = runner_refuses(only, tmp_path / "no_data", tmp_path / "runs", tmp_path / "ckpt", *params)
    assert message in proc.stderr, proc.stderr
    assert listed is None or listed in proc.stderr  # lists the declared parameters
    assert not (tmp_path / "runs").exists() and "building" not in proc.stdout


def test_runner_rejects_a_data_dir_without_a_dataset(tmp_path, no_project_env):
    proc = runner_refuses(["01"], tmp_path / "typo", tmp_path / "runs", None)
    assert f"{tmp_path / 'typo'}: folder not found" in proc.stderr, proc.stderr
    assert not (tmp_path / "typo").exists()


@pytest.fixture
def dry_runner(monkeypatch, capsys):
    """tools/run_notebooks.py's main in this process with papermill's execution replaced by a record of the
    parameters each notebook got: run(*argv) -> (exit code, {notebook: parameters}, stdout, stderr)."""
    import papermill

    calls = {}
    monkeypatch.setattr(
        papermill,
        "execute_notebook",
        lambda nb, out, parameters, **kw: calls.__setitem__(Path(nb).stem, dict(parameters)),
    )
    for k in [k for k in os.environ if k.startswith("IMAGE_RESTORE_")]:
        monkeypatch.delenv(k)
    spec = importlib.util.spec_from_file_location("run_notebooks_under_test", ROOT / "tools" / "run_notebooks.py")
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)

    def run(*argv):
        calls.clear()
        capsys.readouterr()
        try:
            rc = runner.main([str(a) for a in argv])
        except SystemExit as e:  # argparse's refusals
            rc = e.code
        out, err = capsys.readouterr()
        return rc, dict(calls), out, err

    return run


def test_runner_shortens_training_only_on_the_sample_dataset(dry_runner, sample_data, own_data, tmp_path):
    """The short sample-data runs (2 epochs x 6 steps) apply to the sample dataset only, where 05 keeps the shipped
    weights; on other data the notebooks' defaults apply and 05 scores what 02-04 trained in the same run."""
    ckpt = make_tiny_weights(tmp_path / "ckpt")
    dirs = ["--out", tmp_path / "runs", "--ckpt-dir", ckpt]
    rc, calls, out, _ = dry_runner("--data-dir", sample_data, *dirs, "--only", "02", "05")
    assert rc == 0 and calls["02_train_mask"]["preset"] == "sample" and calls["02_train_mask"]["settings"] == {}
    assert "weights" not in calls["05_inference_submission"]  # 'auto': the shipped weights
    assert "holds the sample dataset built from the bundled photos" in out and "05 uses weights: " in out

    rc, calls, out, _ = dry_runner("--data-dir", own_data, *dirs, "--only", "02", "03", "04", "05")
    assert rc == 0 and all(calls[n]["preset"] == "default" for n in ("02_train_mask", "04_train_inpaint"))
    assert calls["05_inference_submission"]["weights"] == str(ckpt)
    assert f"{own_data} is not the sample dataset" in out and f"05 uses weights: {ckpt}: what 02, 03, 04 trained" in out

    rc, calls, out, _ = dry_runner("--data-dir", own_data, *dirs, "--only", "02", "05", "-p", f"weights={tmp_path}")
    assert rc == 0 and calls["05_inference_submission"]["weights"] == str(tmp_path)  # the user's choice stands
    rc, calls, out, _ = dry_runner("--data-dir", own_data, *dirs, "--only", "05")  # nothing trained in this run
    assert rc == 0 and "weights" not in calls["05_inference_submission"]
    rc, calls, out, _ = dry_runner("--data-dir", sample_data, *dirs, "--full", "--only", "02")
    assert rc == 0 and calls["02_train_mask"]["preset"] == "default" and "(--full)" in out

    (tmp_path / "partial").mkdir()  # 02 alone trained there: no complete set for 05, said before it runs
    rc, calls, _, err = dry_runner(
        "--data-dir", own_data, "--out", tmp_path / "runs", "--ckpt-dir", tmp_path / "partial", "--only", "02", "05"
    )
    assert rc == 1 and "05_inference_submission" not in calls and "no complete set" in err, err


def test_runner_says_in_one_line_that_a_checkpoint_of_other_settings_is_not_resumed(
    dry_runner, monkeypatch, own_data, tmp_path
):
    import papermill

    evalue = f"{tmp_path}/mask.train_state.pt: this checkpoint was trained with other settings (data_dir: a -> b)"

    def refuse(nb, out, parameters, **kw):
        raise papermill.PapermillExecutionError(9, 9, "utils.fit(...)", "SettingsChangedError", evalue, ["..."])

    monkeypatch.setattr(papermill, "execute_notebook", refuse)
    rc, _, _, err = dry_runner(
        "--data-dir", own_data, "--out", tmp_path / "runs", "--ckpt-dir", tmp_path, "--only", "02"
    )
    assert rc == 2 and err.strip() == f"error: 02_train_mask: {evalue} (here: --ckpt-dir <another folder>)", err


def test_runner_hands_config_fields_to_the_training_notebooks_settings(dry_runner, sample_data, tmp_path):
    """-p values of config fields go into each training notebook's `settings`, on top of its preset (smoke's too),
    only to the notebooks whose stage has the field; a value that a config refuses stops the run before any work."""
    dirs = ["--data-dir", sample_data, "--out", tmp_path / "runs", "--ckpt-dir", tmp_path / "ckpt"]
    rc, calls, out, err = dry_runner(
        "--smoke", *dirs, "--only", "02", "03", "-p", "epochs=2", "-p", "rebalance_lambda=0.3", "-p", "device='cpu'"
    )
    assert rc == 0 and not err, err
    assert calls["02_train_mask"]["preset"] == calls["03_train_colorization"]["preset"] == "smoke"
    assert calls["02_train_mask"]["settings"] == {"epochs": 2} and calls["02_train_mask"]["device"] == "cpu"
    assert calls["03_train_colorization"]["settings"] == {"epochs": 2, "rebalance_lambda": 0.3}
    assert "smoke" not in calls["02_train_mask"]  # the training notebooks take the preset
    rc, calls, _, err = dry_runner(*dirs, "--only", "02", "-p", "epochs='two'")
    assert rc == 2 and not calls and "02_train_mask: MaskConfig.epochs: expected int, got 'two' (str)" in err, err
    rc, calls, _, err = dry_runner(*dirs, "--only", "04", "-p", "loss='classify'")
    assert rc == 2 and "04_train_inpaint: InpaintConfig.loss: 'classify' is not one of" in err, err


def test_eda_notebook(nb_env):
    """Run from another folder with relative paths (taken from the working directory, made absolute for the
    notebook, whose kernel starts in notebooks/); with no --out, $IMAGE_RESTORE_RUNS says where the outputs go."""
    cwd = nb_env["out"].parent
    run_notebooks(
        ["01"],
        os.path.relpath(nb_env["data"], cwd),
        None,
        None,
        cwd=cwd,
        env={"IMAGE_RESTORE_RUNS": str(nb_env["out"])},
    )
    floors = json.loads((nb_env["out"] / "floors.json").read_text())
    assert set(floors) == {"gray copy", "Telea, known mask"}
    assert floors["Telea, known mask"]["masked_ssim"] > floors["gray copy"]["masked_ssim"]
    nb = json.loads((nb_env["out"] / "01_eda.ipynb").read_text())
    assert any(o.get("output_type") == "display_data" for c in nb["cells"] for o in c.get("outputs", []))  # plots drawn


def test_mask_notebook_trains_in_two_processes(nb_env, tmp_path):
    """num_processes=2: notebook 02 trains through accelerate's notebook_launcher (two gloo processes on the CPU),
    then loads the checkpoint back for its later cells."""
    run_notebooks(["02"], nb_env["data"], nb_env["out"], tmp_path / "ckpt", "num_processes=2")
    nb = json.loads((nb_env["out"] / "02_train_mask.ipynb").read_text())
    assert not [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    cfg = utils.load_model(tmp_path / "ckpt" / "mask")[1]
    assert cfg["epoch"] == 1 and cfg["history"][-1]["images"] > 0
    summary = json.loads((tmp_path / "ckpt" / "mask_metrics.json").read_text())
    assert "loss_comparison" not in summary and summary["loss"] == "bce+dice"  # no comparison in this mode


def test_mask_notebook_trains_on_the_provided_pairs(nb_env, tmp_path):
    """train_source='both': notebook 02 trains on synthetic damage and the data set's own train_input pairs."""
    run_notebooks(
        ["02"], nb_env["data"], nb_env["out"], tmp_path / "ckpt", "train_source='both'", "compare_losses=False"
    )
    n_train = len(utils.prepare_run(nb_env["data"], "cpu")["train_paths"])
    nb = json.loads((nb_env["out"] / "02_train_mask.ipynb").read_text())
    printed = "".join(t for c in nb["cells"] for o in c.get("outputs", []) for t in o.get("text", []))
    assert f"train items (both): {2 * n_train}" in printed
    cfg = utils.load_model(tmp_path / "ckpt" / "mask")[1]
    assert cfg["epoch"] == 1 and cfg["history"][-1]["images"] > 0


def test_colour_notebook_fine_tunes_on_fresh_photo_crops(nb_env, tmp_path):
    """train_source='photos' with init_weights: notebook 03 starts from given weights and trains on crops drawn
    afresh from the full-resolution photos that the data dir's manifest names (no validation photo among them)."""
    weights = make_tiny_weights(tmp_path / "w")
    run_notebooks(
        ["03"],
        nb_env["data"],
        nb_env["out"],
        tmp_path / "ckpt",
        "train_source='photos'",
        f"init_weights='{weights}'",
        "compare_losses=False",
        "loss='perceptual+l1'",
    )
    run = utils.prepare_run(nb_env["data"], "cpu")
    n_photos = len(utils.train_photo_paths(nb_env["data"], run["train_paths"], run["val_paths"]))
    nb = json.loads((nb_env["out"] / "03_train_colorization.ipynb").read_text())
    printed = "".join(t for c in nb["cells"] for o in c.get("outputs", []) for t in o.get("text", []))
    assert f"train items (photos): {n_photos}" in printed
    state = utils.checkpoints.load_train_state(tmp_path / "ckpt" / "color.train_state.pt")
    assert state["settings"]["config"]["init_weights"] == str(weights) and state["history"][-1]["images"] > 0


def test_inference_notebook(nb_env, tmp_path):
    weights = make_tiny_weights(tmp_path / "w")
    sub = tmp_path / "sub" / "submission.zip"
    proc = run_notebooks(
        ["05"],
        nb_env["data"],
        nb_env["out"],
        nb_env["ckpt"],
        f"weights={weights}",
        f"submission_zip={sub}",
        f"png_dir={tmp_path / 'png'}",
    )
    summary = json.loads((nb_env["out"] / "summary.json").read_text())
    assert summary["validated"] and Path(summary["zip"]) == sub.resolve()
    assert utils.validate_submission(sub, nb_env["data"] / "test.csv")
    assert 0 < summary["score"]["score"] < 1
    n_test = len(utils.load_test_table(nb_env["data"]))
    last = proc.stdout.strip().splitlines()[-7:]  # where the images are, how the score reads, the floors, the time
    assert last[0] == f"restored images: {tmp_path / 'png'}/ ({n_test} PNGs)", last
    assert last[1] == f"submission zip:  {sub.resolve()} (validated)", last
    assert last[3].startswith("score on the ") and "higher is better" in last[4] and last[6].startswith("total"), last
    assert "Executing: 100%" in proc.stderr, proc.stderr[-2000:]  # a progress bar over each notebook's cells
    # the floors are scored on the same test images as the restorations
    data = nb_env["data"]
    names = sorted(p.name for p in (data / "test_gt").glob("*.png"))
    gray = [utils.read_image(data / "test_input" / n, "L") for n in names]
    gts = [utils.read_image(data / "test_gt" / n, "RGB") for n in names]
    holes = [utils.read_image(data / "test_mask" / n, "L") > 0 for n in names]
    copy = utils.summarize(utils.score_arrays(gts, [utils.gray_copy(g) for g in gray], holes))["score"]
    assert abs(summary["floors"]["gray copy"]["score"] - copy) < 1e-9
    assert last[5].startswith(f"  for scale, on the same {n_test} test images: the gray input itself {copy:.4f}; "), (
        last
    )
