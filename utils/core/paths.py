"""Where the project's folders are, independent of the working directory.

A notebook's kernel starts in `notebooks/` under Jupyter Lab, VS Code and Colab, in the repository root under
`tools/run_notebooks.py`, anywhere under papermill: relative paths are therefore taken from the repository
root (the folder holding this package, installed with `pip install -e .`), never from the working directory.
Environment variables override each folder (e.g. on Kaggle, where the data is mounted elsewhere):

    IMAGE_RESTORE_ROOT         the repository root (default: the folder above utils/)
    IMAGE_RESTORE_DATA         the data dir (default: <root>/data)
    IMAGE_RESTORE_CHECKPOINTS  checkpoints of notebooks 02-04 (default: <root>/checkpoints)
    IMAGE_RESTORE_RUNS         numbers the notebooks save (default: <root>/runs)
    IMAGE_RESTORE_SUBMISSION   the submission zip and PNGs (default: <root>/submission)
    IMAGE_RESTORE_SMOKE        1/true/yes/on: the notebooks' smoke mode (tiny runs), read by `smoke_default()`

Command-line tools (tools/*.py, benchmark.py) are the exception: a path typed on their command line is taken
from the working directory, as with any command (`cli_path`), and handed on (e.g. to a notebook) as an absolute
path.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT_ENV = "IMAGE_RESTORE_ROOT"
SMOKE_ENV = "IMAGE_RESTORE_SMOKE"
# folder name under the root -> the environment variable that overrides it
FOLDER_ENVS = {"data": "IMAGE_RESTORE_DATA", "checkpoints": "IMAGE_RESTORE_CHECKPOINTS", "weights": None,
               "runs": "IMAGE_RESTORE_RUNS", "submission": "IMAGE_RESTORE_SUBMISSION"}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def project_root() -> Path:
    """The repository root: $IMAGE_RESTORE_ROOT, else the folder holding this package when it is a checkout
    (it has pyproject.toml, as with `pip install -e .`), else the working directory."""
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]).expanduser().resolve()
    here = Path(__file__).resolve().parents[2]        # utils/core/paths.py -> the repository
    return here if (here / "pyproject.toml").is_file() else Path.cwd().resolve()


def project_path(path) -> Path:
    """`path` as an absolute path: `~` expanded, a relative path taken from the repository root."""
    p = Path(path).expanduser()
    return (p if p.is_absolute() else project_root() / p).resolve()


def project_dir(name: str, path=None) -> Path:
    """One of the project's folders (data, checkpoints, weights, runs, submission): `path` when given
    (relative to the repository root), else its environment variable, else <root>/<name>."""
    if name not in FOLDER_ENVS:
        raise ValueError(f"unknown project folder {name!r}; one of {sorted(FOLDER_ENVS)}")
    if path:
        return project_path(path)
    env = FOLDER_ENVS[name]
    if env and os.environ.get(env):
        return Path(os.environ[env]).expanduser().resolve()
    return project_root() / name


def cli_path(path) -> Path:
    """A path typed on a command line as an absolute path: `~` expanded, a relative path taken from the working
    directory (not from the repository root, as `project_path` does)."""
    return Path(path).expanduser().resolve()


def smoke_default() -> bool:
    """The notebooks' default `smoke` switch: True when $IMAGE_RESTORE_SMOKE is 1/true/yes/on, so a person in
    Jupyter can flip it without editing code (`IMAGE_RESTORE_SMOKE=1 make lab`); papermill's `-p smoke ...`
    still overrides it."""
    value = os.environ.get(SMOKE_ENV, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{SMOKE_ENV}={os.environ[SMOKE_ENV]!r}: expected 1/true/yes/on or 0/false/no/off")


__all__ = ["project_root", "project_path", "project_dir", "cli_path", "smoke_default"]
