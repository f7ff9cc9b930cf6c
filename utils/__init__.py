"""Image-Restore's shared package: what the notebooks, the command lines and the app import.

    import utils
    restorer = utils.Restorer.from_dir("weights")     # every public name of every module is an attribute of utils

The modules are grouped by role, each layer importing only those below it:

    training/   the stages' steps, losses, the loop, the multi-process launcher, validation, plots
    data/       damage, data sets, the sample dataset, a data set's submission (make_submission)
    inference/  the pipeline (Restorer), the pre-fills, the hole's refinement, colour post-process, batch restore, ONNX
    core/       files, images, paths, runtime (device, precision), configs (the stages' typed configs), checkpoints,
                the networks, the metric

`utils.<name>` is looked up in the modules' own `__all__` lists (read from their source, without importing them) and
the module is imported on first use (PEP 562): `import utils` costs nothing, and a command that only restores images
does not import the training code (timm's model zoo, albumentations, accelerate, matplotlib). A module is also an
attribute by its own name (`utils.hue.BINS`, `utils.losses.MASK_LOSSES`) and by its path (`utils.inference.hue`).
"""
import ast as _ast
import importlib as _importlib
import os as _os
from pathlib import Path as _Path

# no network at run time: albumentations asks PyPI for a newer version when it is imported unless told not to
_os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

LAYERS = ("core", "inference", "data", "training")     # lowest first
_HERE = _Path(__file__).resolve().parent


def _public_names(path: _Path) -> list[str]:
    """A module's `__all__` (a literal list of names), read from its source."""
    for node in _ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, _ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return list(_ast.literal_eval(node.value))
    return []


def _index() -> tuple[dict, dict]:
    """({module name: dotted path}, {public name: dotted path of its module})."""
    modules, owner = {}, {}
    for layer in LAYERS:
        for path in sorted((_HERE / layer).glob("*.py")):
            if path.stem == "__init__":
                continue
            dotted = f"{layer}.{path.stem}"
            modules[path.stem] = dotted
            for name in _public_names(path):
                if name in owner:
                    raise ImportError(f"utils: {name!r} is exported by both {owner[name]} and {dotted}")
                owner[name] = dotted
    return modules, owner


_MODULES, _OWNER = _index()
__all__ = sorted(_OWNER)


def __getattr__(name: str):
    if name in _OWNER:
        value = getattr(_importlib.import_module(f".{_OWNER[name]}", __name__), name)
    elif name in _MODULES:          # a module by its own name, e.g. utils.hue
        value = _importlib.import_module(f".{_MODULES[name]}", __name__)
    elif name in LAYERS:
        value = _importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'utils' has no attribute {name!r}")
    globals()[name] = value          # imported once; later lookups do not come here
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__) | set(_MODULES))
