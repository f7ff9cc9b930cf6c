"""The project's folders come from the repository (or environment variables), never the working directory; the
package is installed (`pip install -e .`), so `import utils` works from any folder. Paths typed on a command line
are the exception: taken from the working directory, as with any command."""
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import run_cli

import utils

ROOT = Path(__file__).resolve().parent.parent


def test_import_utils_from_notebooks_folder():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only the install may make it importable
    out = subprocess.run([sys.executable, "-c", "import utils; print(utils.project_root())"], cwd=ROOT / "notebooks",
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert Path(out.stdout.strip()) == ROOT


def test_folders_resolve_from_the_repository_not_the_cwd(tmp_path, monkeypatch):
    for env in ("IMAGE_RESTORE_ROOT", "IMAGE_RESTORE_DATA", "IMAGE_RESTORE_CHECKPOINTS", "IMAGE_RESTORE_RUNS",
                "IMAGE_RESTORE_SUBMISSION"):
        monkeypatch.delenv(env, raising=False)
    monkeypatch.chdir(tmp_path)
    assert utils.project_root() == ROOT
    assert utils.project_dir("checkpoints") == ROOT / "checkpoints"
    assert utils.project_dir("runs", "runs/x") == ROOT / "runs" / "x"          # relative: from the repository
    assert utils.project_dir("runs", tmp_path / "r") == tmp_path / "r"       # absolute: as given
    assert utils.resolve_data_dir() == ROOT / "data"
    monkeypatch.setenv("IMAGE_RESTORE_RUNS", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("IMAGE_RESTORE_DATA", str(tmp_path / "d"))
    assert utils.project_dir("runs") == tmp_path / "elsewhere"
    assert utils.project_dir("data") == utils.resolve_data_dir() == tmp_path / "d"
    monkeypatch.setenv("IMAGE_RESTORE_ROOT", str(tmp_path))
    assert utils.project_dir("weights") == tmp_path / "weights"
    with pytest.raises(ValueError, match="unknown project folder"):
        utils.project_dir("notebook")


@pytest.mark.parametrize("value, smoke", [(None, False), ("1", True), ("true", True), ("ON", True), ("0", False),
                                          ("no", False), ("", False)])
def test_smoke_switch_from_the_environment(monkeypatch, value, smoke):
    if value is None:
        monkeypatch.delenv("IMAGE_RESTORE_SMOKE", raising=False)
    else:
        monkeypatch.setenv("IMAGE_RESTORE_SMOKE", value)
    assert utils.smoke_default() is smoke


def test_smoke_switch_rejects_a_typo(monkeypatch):
    monkeypatch.setenv("IMAGE_RESTORE_SMOKE", "yse")
    with pytest.raises(ValueError, match="IMAGE_RESTORE_SMOKE='yse'"):
        utils.smoke_default()


def test_only_the_default_data_folder_gets_the_sample_dataset(tmp_path, monkeypatch):
    """A data folder someone named that is not there (or holds no dataset) is an error naming it, not silently
    replaced by sample data; only the default folder (<root>/data) is built from the bundled photos."""
    monkeypatch.delenv("IMAGE_RESTORE_DATA", raising=False)
    monkeypatch.setenv("IMAGE_RESTORE_ROOT", str(tmp_path))
    with pytest.raises(utils.DataError, match=re.escape(f"{tmp_path / 'typo'}: folder not found")):
        utils.ensure_dataset(tmp_path / "typo")
    assert not (tmp_path / "typo").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(utils.DataError, match=re.escape(f"{tmp_path / 'empty'}: no dataset") + ".*train.csv"):
        utils.ensure_dataset(tmp_path / "empty")
    assert not list((tmp_path / "empty").iterdir())                       # inputs are never modified
    assert utils.ensure_dataset(tmp_path / "data", n_train=2, n_test=1) == tmp_path / "data"
    assert (tmp_path / "data" / "train.csv").is_file() and (tmp_path / "data" / "test.csv").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["run_notebooks", "train"])
def test_command_line_paths_are_taken_from_the_working_directory(tmp_path, tool, monkeypatch, no_project_env):
    """`--data-dir probe` from another folder means <cwd>/probe, as with any command-line tool (benchmark.py too);
    a folder there without a dataset is an error (exit 2) naming it, and nothing is built in the repository."""
    name = f"probe_{uuid.uuid4().hex[:8]}"
    (tmp_path / name).mkdir()
    args = {"run_notebooks": ["--only", "01", "--smoke"],
            "train": ["--stage", "mask", "--cpu", "--epochs", "1", "--steps-per-epoch", "1", "--val-count", "1",
                      "--image-size", "64", "--pretrained", "none", "--no-validate", "--ckpt-dir",
                      str(tmp_path / "ckpt")]}[tool]
    monkeypatch.chdir(tmp_path)
    try:
        for folder, problem in [(name, "no dataset"), (name + "_typo", "folder not found")]:
            proc = run_cli(f"tools/{tool}.py", "--data-dir", folder, *args)
            assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
            assert f"{tmp_path / folder}: {problem}" in proc.stderr, proc.stderr[-2000:]
            assert "building the sample dataset" not in proc.stdout
            assert not (ROOT / folder).exists()
        assert not list((tmp_path / name).iterdir())
    finally:                                      # a failing run could build sample data there: leave none
        for folder in (name, name + "_typo"):
            shutil.rmtree(ROOT / folder, ignore_errors=True)
