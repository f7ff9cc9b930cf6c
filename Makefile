# Two commands do all set-up on a fresh machine: `make run` (the main job) and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?=
# glibc malloc tuning doubles CPU training speed (must be set before Python starts)
export GLIBC_TUNABLES := glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184

.PHONY: venv run test test-fast lint gpu-check app lab browser clean-runs

$(BIN)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	@# -qq: setuptools' boxed note on editable installs ("folders ... with the same name as your package") is a
	@# warning that pip 26 shows at -q; an error still shows
	$(BIN)/python -m pip install -qq --no-deps -e .   # `import utils` from any folder (notebooks/, tools/, ...)
	touch $@

venv: $(BIN)/.installed

# The main job: build the sample data if none is there, run notebooks 01-05, validate the zip, print the score.
# DATA unset: $IMAGE_RESTORE_DATA, else data/ (sample data built there); DATA=dir must hold a dataset.
run: venv
	$(BIN)/python tools/run_notebooks.py $(if $(DATA),--data-dir $(DATA)) $(RUN_ARGS)

# Debian's Chromium for the app's browser test (Playwright drives it; no browser download)
browser:
	@command -v chromium >/dev/null || { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; else sudo apt-get install -y -qq chromium; fi; }

# Every test (tests/ and research/): unit tests, the notebooks in smoke mode, the app and Jupyter Lab in Chromium,
# gloo training processes; two pytest workers, one test file each at a time (docs/testing.md)
TEST_WORKERS ?= 2
test: venv browser
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests research $(TEST_ARGS)

# ruff over the whole tree (rules in pyproject.toml): pyflakes, pycodestyle, isort, bugbear, pyupgrade
lint: venv
	$(BIN)/ruff check .

# The unit tests only: no Chromium, no notebooks, no training processes, nothing marked slow (markers on the tests)
test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow and not browser and not notebook and not distributed" tests $(TEST_ARGS)

# On a machine with an NVIDIA GPU (under 10 minutes): the CUDA tests, a few training steps of each stage at the
# notebooks' competition settings in the card's precision, restore.py on 100 images; a JSON + markdown report in
# research/reports/ (card, precision, images/s per stage, peak GPU memory). Without a GPU: one line, exit code 1.
gpu-check: venv
	$(BIN)/python tools/gpu_check.py $(GPU_CHECK_ARGS)

# The web app on http://127.0.0.1:7860 (offline; shipped weights, else checkpoints/)
app: venv
	$(BIN)/python app.py $(APP_ARGS)

# Jupyter Lab on http://127.0.0.1:8888 with the project's kernel (the venv's Python), opened on notebooks/; its
# kernels talk to it over an encrypted channel (tools/lab.py)
lab: venv
	$(BIN)/python tools/lab.py $(LAB_ARGS)

clean-runs:
	rm -rf runs
