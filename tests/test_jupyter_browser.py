"""Notebook 01 as a person uses it: Jupyter Lab (tools/lab.py, as `make lab` starts it) in Debian's Chromium driven by
Playwright, Run > Run All Cells, then a figure and no error on the page. The kernel starts in a copy of notebooks/
outside the repository, so the notebook must find its data and output folders through `utils` (not the working
directory); the server's environment turns smoke mode on and points the data dir at the tests' sample dataset.
The committed notebook is never opened, so Jupyter cannot save outputs into it."""
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from test_app import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, free_port

pytestmark = [pytest.mark.notebook, pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = "01_eda.ipynb"
# JupyterLab settings for the run: every cell in the page (no windowing), no news or update checks (offline)
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}


def write_lab_config(config_dir: Path):
    for rel, settings in LAB_SETTINGS.items():
        path = config_dir / "lab" / "user-settings" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))


@pytest.fixture(scope="module")
def lab(sample_data, tmp_path_factory):
    """Jupyter Lab on a free local port with a token, its root a temporary folder holding a copy of the notebook;
    one server for this file's tests (starting one takes seconds)."""
    tmp_path = tmp_path_factory.mktemp("lab")
    home = tmp_path / "lab"
    (home / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, home / "notebooks" / NOTEBOOK)
    write_lab_config(tmp_path / "jupyter-config")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel's inline backend draws figures
    env.update({"IMAGE_RESTORE_SMOKE": "1", "IMAGE_RESTORE_DATA": str(sample_data),
                "IMAGE_RESTORE_RUNS": str(tmp_path / "runs"), "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
                "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"), "IPYTHONDIR": str(tmp_path / "ipython")})
    port, token = free_port(), secrets.token_hex(16)
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "lab.py"), "--no-browser", f"--port={port}",
                             "--port-retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={home}"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            if urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).status == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail("Jupyter Lab did not start: " + (tmp_path / "lab.log").read_text()[-3000:])
        time.sleep(1)
    yield {"base": base, "token": token, "home": home, "runs": tmp_path / "runs", "log": tmp_path / "lab.log"}
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


# every code cell's prompt, e.g. ['[1]:', '[*]:', '[ ]:']
PROMPTS = "[...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')].map(e => e.innerText.trim())"


def run_all_cells(page, attempts: int = 3):
    """Run > Run All Cells, until a cell is queued or has run. Under load a click on a menu that JupyterLab has
    not finished wiring can be lost: then close the menu and try again."""
    started = f"{PROMPTS}.some(t => /\\[(\\d+|\\*)\\]/.test(t))"
    for attempt in range(attempts):
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        try:
            page.wait_for_function(started, timeout=30_000)
            return
        except Exception:
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")


def test_eda_notebook_runs_in_jupyter_lab(lab):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: `make test` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    committed = (ROOT / "notebooks" / NOTEBOOK).read_bytes()
    n_code = sum(c["cell_type"] == "code" for c in json.loads(committed)["cells"])
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{lab['base']}/lab/tree/notebooks/{NOTEBOOK}?token={lab['token']}", timeout=120_000)
        page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=120_000)
        # the kernel is up: the status bar reads "Python 3 (ipykernel) | Idle"
        page.wait_for_function("(document.querySelector('#jp-main-statusbar') || {}).innerText?.includes('| Idle')",
                               timeout=120_000)
        page.wait_for_function(f"{PROMPTS}.length === {n_code}", timeout=30_000)

        try:
            run_all_cells(page)
            # done: the kernel idle again and no cell queued or running; Run All stops at the first error, leaving
            # the cells after it unnumbered, so every prompt numbered also says that no cell failed
            page.wait_for_function(
                f"!{PROMPTS}.some(t => t.includes('*')) && "
                "document.querySelector('.jp-Notebook-ExecutionIndicator').dataset.status === 'idle'",
                timeout=300_000,
            )
            prompts = page.evaluate(PROMPTS)
            errors = page.locator(
                ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                has_text=re.compile(r"Traceback|Error"),
            ).all_inner_texts()
            figures = page.locator(".jp-OutputArea-output img")
            n_figures = figures.count()
            if n_figures:
                figures.first.scroll_into_view_if_needed()
        finally:
            page.screenshot(path=str(ARTIFACTS / "jupyter_01_eda.png"))  # also when it failed: what the page showed
        browser.close()

    assert not errors, "error output in the notebook:\n" + "\n".join(errors)[-3000:]
    assert all(re.fullmatch(r"\[\d+\]:", t) for t in prompts), f"cells not all executed: {prompts}"
    assert n_figures >= 1, "no figure in the notebook's outputs"
    floors = json.loads((lab["runs"] / "floors.json").read_text())  # saved where $IMAGE_RESTORE_RUNS says
    assert set(floors) == {"gray copy", "Telea, known mask"}
    assert (ROOT / "notebooks" / NOTEBOOK).read_bytes() == committed  # the committed notebook is untouched
    # the kernel talked to the server over an encrypted channel (tools/lab.py): no plain-TCP warning in the log
    assert "Kernel is running over TCP" not in lab["log"].read_text()


NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# the open notebook's tab, marked when the document differs from the file on disk (Lab's "unsaved" dot)
DIRTY_TAB = "document.querySelector('.lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current.jp-mod-dirty') !== null"


def test_notebooks_open_unmodified_in_jupyter_lab(lab):
    """Opening a notebook and starting its kernel changes nothing: Lab writes the kernel's kernelspec and
    language_info into the notebook's metadata, and a notebook whose metadata differ opens already marked unsaved."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: `make test` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    for name in NOTEBOOKS:
        shutil.copy(ROOT / "notebooks" / name, lab["home"] / "notebooks" / name)
    dirty = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for name in NOTEBOOKS:  # one page each, its workspace reset: that notebook's tab alone
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{lab['base']}/lab/tree/notebooks/{name}?reset&token={lab['token']}", timeout=120_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            page.wait_for_function(
                "(document.querySelector('#jp-main-statusbar') || {}).innerText?.includes('| Idle')", timeout=120_000
            )
            page.wait_for_timeout(2000)  # the kernel's info and spec land in the metadata once it is connected
            dirty[name] = page.evaluate(DIRTY_TAB)
            page.close()
        browser.close()
    assert not any(dirty.values()), f"opened as modified: {[n for n, d in dirty.items() if d]}"
