"""The shape of the code base: utils/ is layered (core, inference, data, training: each imports only its own layer
and those below) with no import cycles, the inference code imports no training code, `import utils` exports exactly
the modules' own `__all__` lists, and no script edits sys.path or imports another module's private names.

The import graph is read from the source (ast), not by importing: every `from .x import ...`, `from ..layer.x import
...`, `from . import x`, `from utils.layer.x import ...` and `import utils.layer.x`, at the top of a module or inside a
function (a lazy import is still a dependency)."""
from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "utils"
LAYERS = ("core", "inference", "data", "training")       # lowest first
# what `restore.py`, the app and a submission run: none of it may pull in training code
INFERENCE = ("inference.pipeline", "inference.batch_restore", "inference.onnx_backend")


def modules(pkg: Path = PKG) -> set[str]:
    """The package's modules as dotted names relative to it ('inference.pipeline'), __init__ files left out."""
    return {".".join(p.relative_to(pkg).with_suffix("").parts) for p in pkg.rglob("*.py") if p.stem != "__init__"}


def import_graph(pkg: Path = PKG) -> dict[str, set[str]]:
    """{module: the package's modules it imports} for the package's own modules (not the __init__ files)."""
    mods = modules(pkg)

    def targets(m: str, parts: list[str], names) -> set[str]:
        name = ".".join(x for x in parts if x)
        if name in mods:
            return {name}
        return {".".join([*filter(None, parts), a.name]) for a in names} & mods

    graph = {}
    for m in mods:
        here = m.split(".")[:-1]
        deps = set()
        for node in ast.walk(ast.parse((pkg / (m.replace(".", "/") + ".py")).read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[:len(here) - node.level + 1]
                    deps |= targets(m, base + (node.module.split(".") if node.module else []), node.names)
                elif node.module and node.module.split(".")[0] == pkg.name:
                    deps |= targets(m, node.module.split(".")[1:], node.names)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    parts = a.name.split(".")
                    if parts[0] == pkg.name and ".".join(parts[1:]) in mods:
                        deps.add(".".join(parts[1:]))
        graph[m] = deps - {m}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for d in graph[todo.pop()]:
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return seen


def test_graph_reader_sees_every_import_form(tmp_path):
    pkg = tmp_path / "utils"
    for layer in ("low", "high"):
        (pkg / layer).mkdir(parents=True)
        (pkg / layer / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "high" / "a.py").write_text("from .b import x\n")
    (pkg / "high" / "b.py").write_text("def f():\n    from ..low import c\n")
    (pkg / "low" / "c.py").write_text("import utils.low.d\n")
    (pkg / "low" / "d.py").write_text("from utils.high.a import y\nimport os\nfrom pathlib import Path\n")
    graph = import_graph(pkg)
    assert graph == {"high.a": {"high.b"}, "high.b": {"low.c"}, "low.c": {"low.d"}, "low.d": {"high.a"}}
    assert cycles(graph) == [["high.a", "high.b", "low.c", "low.d"]]
    assert reachable(graph, "high.b") == {"high.a", "high.b", "low.c", "low.d"}


def test_no_import_cycles_in_utils():
    graph = import_graph()
    assert {"inference.pipeline", "training.loop", "core.images", "core.guards"} <= graph.keys()
    found = cycles(graph)
    assert not found, "import cycles in utils/: " + "; ".join(" <-> ".join(c) for c in found)


def test_every_module_sits_in_a_layer_and_imports_only_its_own_or_lower_ones():
    graph = import_graph()
    assert {m.split(".")[0] for m in graph} == set(LAYERS) and all(m.count(".") == 1 for m in graph)
    upward = [f"{m} -> {d}" for m, deps in sorted(graph.items()) for d in sorted(deps)
              if LAYERS.index(d.split(".")[0]) > LAYERS.index(m.split(".")[0])]
    assert not upward, f"imports from a higher layer: {upward}"


@pytest.mark.parametrize("module", INFERENCE)
def test_inference_imports_no_training_code(module):
    graph = import_graph()
    training = {m for m in reachable(graph, module) if m.split(".")[0] in ("data", "training")}
    assert not training, f"utils/{module}.py imports training code (directly or through others): {sorted(training)}"


def test_utils_exports_exactly_the_modules_all_lists():
    """`import utils` gives every name of every module's `__all__` (one list per module, read by utils/__init__.py
    from the source), each from its own module, and no name twice; a module is also reachable by its own name."""
    import importlib

    import utils

    expected = {}
    for m in sorted(modules()):
        module = importlib.import_module(f"utils.{m}")
        assert hasattr(module, "__all__"), f"utils/{m.replace('.', '/')}.py has no __all__"
        for name in module.__all__:
            assert name not in expected, f"{name} is in the __all__ of both {expected[name]} and {m}"
            expected[name] = m
            assert getattr(utils, name) is getattr(module, name), name
        assert getattr(utils, m.split(".")[1]) is module
    assert sorted(utils.__all__) == sorted(expected)


def project_sources() -> list[Path]:
    """The repository's tracked Python files (none of the venv's)."""
    out = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / p for p in out.split() if (ROOT / p).is_file()]


def test_no_sys_path_edits():
    # `pip install -e .` (make venv) makes `import utils` work from any folder; a script that edits sys.path hides
    # a broken install and imports whichever copy it finds first
    pattern = re.compile(r"sys\.path\s*(\.\s*(insert|append|extend)\b|\[.*\]\s*=|\s*[+]?=)")
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in project_sources()
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if pattern.search(line) and p.name != "test_structure.py"]
    assert not offenders, f"sys.path edited in {offenders}"


def test_no_private_names_imported_across_modules():
    # the tests may reach into a module's internals; the code the users run may not
    offenders = []
    for p in project_sources():
        if p.relative_to(ROOT).parts[0] == "tests":
            continue
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if private:
                    offenders.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.module} {private}")
    assert not offenders, f"private names imported across modules: {offenders}"


def test_papermill_reads_every_notebook_parameter(caplog):
    """Each line of a notebook's parameters cell is one papermill can read (a `=` inside a comment is not: papermill
    then prints "Unable to parse line N ..." on every run)."""
    import logging

    import papermill

    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        with caplog.at_level(logging.WARNING, logger="papermill"):
            assert papermill.inspect_notebook(str(nb)), nb.name
    assert "Unable to parse" not in caplog.text, caplog.text
