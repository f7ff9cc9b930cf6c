"""tools/gpu_check.py (`make gpu-check`): without a GPU it says so in one line and exits with 1, writing nothing; its
report (JSON + markdown) names the card, the precision, the images/s per stage and the peak GPU memory."""
import json

import pytest
from conftest import ROOT, cuda_available, run_cli


@pytest.mark.skipif(cuda_available(), reason="a GPU is visible: the check would run")
def test_without_a_gpu_it_says_so_in_one_line_and_exits_non_zero(tmp_path):
    proc = run_cli("tools/gpu_check.py", "--out", tmp_path / "reports")
    assert proc.returncode == 1 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "no CUDA GPU here" in proc.stderr, proc.stderr
    assert not (tmp_path / "reports").exists()


def test_the_make_target_runs_the_check():
    makefile = (ROOT / "Makefile").read_text()
    assert "\ngpu-check: venv\n\t$(BIN)/python tools/gpu_check.py $(GPU_CHECK_ARGS)\n" in makefile


def test_the_report_names_card_precision_rates_and_memory(tmp_path):
    import runpy

    tool = runpy.run_path(str(ROOT / "tools" / "gpu_check.py"), run_name="gpu_check_under_test")
    report = {"card": {"name": "Tesla T4", "capability": "7.5", "memory_gb": 14.6, "gpus": 2, "cpu_cores": 4,
                       "precision_auto": "fp16", "torch": "2.11.0", "cuda": "12.8"},
              "settings": {"image_size": 256, "batch_size": 8, "steps": 12}, "seconds": 312.5,
              "cuda_tests": {"ok": True, "summary": "9 passed in 61.2s"},
              "training": [{"stage": "mask", "precision": "fp16", "loss": "bce+dice", "fit_images_per_s": 141.2,
                            "step_images_per_s": {"fp16": 290.5, "off": 95.1}, "peak_memory_gb": 2.31,
                            "overflow_steps": 1, "skipped_steps": 0},
                           {"stage": "color", "ok": False, "error": "OutOfMemoryError: CUDA out of memory"}],
              "restore": {"ok": True, "images": 100, "seconds": 21.0, "images_per_s": 4.76, "note": "wall time"}}
    json_path, md_path = tool["write_report"](report, tmp_path)
    assert json_path.name == "gpu_check_tesla-t4.json" and json.loads(json_path.read_text()) == report
    md = md_path.read_text()
    assert "# GPU check: Tesla T4" in md and "amp='auto' picks **fp16**" in md and "9 passed" in md
    assert "| mask | fp16 | 141.2 | 290.5 | 95.1 | 2.31 | 1 |" in md
    assert "Training color: FAILED: OutOfMemoryError" in md and "100 images of 512x512: 21.0 s, 4.76 images/s" in md
