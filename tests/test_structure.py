"""The shape of the code base: utils/ has no import cycles, the inference code imports no training code,
and no script edits sys.path or imports another module's private names.

The import graph is read from the source (ast), not by importing: every `from .x import ...`, `from . import x`,
`from utils.x import ...` and `import utils.x`, at the top of a module or inside a function (a lazy import is
still a dependency)."""
from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "utils"
# what `restore.py`, the app and a submission run: none of it may pull in training code
INFERENCE = ("pipeline", "batch_restore", "onnx_backend")
TRAINING = {"losses", "training", "stages", "distributed", "ranks"}


def import_graph(pkg: Path = PKG) -> dict[str, set[str]]:
    """{module: the package's modules it imports} for the package's own modules (not __init__)."""
    mods = {p.stem for p in pkg.glob("*.py") if p.stem != "__init__"}
    graph = {}
    for m in mods:
        deps = set()
        for node in ast.walk(ast.parse((pkg / f"{m}.py").read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    parts = (node.module or "").split(".")
                elif node.level == 0 and node.module and node.module.split(".")[0] == pkg.name:
                    parts = node.module.split(".")[1:]
                else:
                    continue
                deps.update([parts[0]] if parts and parts[0] else [a.name for a in node.names])
            elif isinstance(node, ast.Import):
                for a in node.names:
                    parts = a.name.split(".")
                    if parts[0] == pkg.name and len(parts) > 1:
                        deps.add(parts[1])
        graph[m] = {d for d in deps if d in mods and d != m}
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
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import x\n")
    (pkg / "b.py").write_text("def f():\n    from . import c\n")
    (pkg / "c.py").write_text("import utils.d\n")
    (pkg / "d.py").write_text("from utils.a import y\nimport os\nfrom pathlib import Path\n")
    graph = import_graph(pkg)
    assert graph == {"a": {"b"}, "b": {"c"}, "c": {"d"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "d"]]
    assert reachable(graph, "b") == {"a", "b", "c", "d"}


def test_no_import_cycles_in_utils():
    graph = import_graph()
    assert {"pipeline", "training", "images", "guards"} <= graph.keys()
    found = cycles(graph)
    assert not found, "import cycles in utils/: " + "; ".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize("module", INFERENCE)
def test_inference_imports_no_training_code(module):
    graph = import_graph()
    training = reachable(graph, module) & TRAINING
    assert not training, f"utils/{module}.py imports training code (directly or through others): {sorted(training)}"


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
