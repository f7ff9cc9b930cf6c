"""The project's folders come from the repository (or environment variables), never the working directory; the
package is installed (`pip install -e .`), so `import utils` works from any folder."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
