import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import run_cli

from research.competition_baseline import CompetitionBaseline, baseline_loss, baseline_restore

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_competition_baseline_shapes_and_learning():
    torch.manual_seed(0)
    model = CompetitionBaseline(encoder="resnet18")
    gray, rgb = torch.rand(2, 1, 64, 64), torch.rand(2, 3, 64, 64)
    restored, pred = model(gray)
    assert restored.shape == (2, 1, 64, 64) and pred.shape == (2, 3, 64, 64)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    losses = []
    for _ in range(6):
        r, p = model(gray)
        loss = baseline_loss(r, p, gray, rgb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    import numpy as np
    out = baseline_restore(model.eval(), np.zeros((100, 80), np.uint8), size=64)
    assert out.shape == (100, 80, 3) and out.dtype == np.uint8


@pytest.mark.slow
def test_benchmark_prints_scores_and_timings(sample_data, tiny_weights, tmp_path):
    import shutil

    out = tmp_path / "bench.json"
    weights = shutil.copytree(tiny_weights, tmp_path / "weights")    # the ONNX export lands beside the copy
    proc = run_cli("benchmark.py", "--data-dir", sample_data, "--weights", weights, "--limit", "2", "--repeats", "2",
                   "--baseline-dir", tmp_path / "none", "--json", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(out.read_text())["results"]
    assert set(res) == {"pipeline (ours)", "pipeline (ours), onnx backend", "ours, order mask-inpaint-colorize",
                        "gray copy", "Telea, known mask"}
    assert all(r["ms_per_image"] > 0 and 0 < r["score"] < 1 for r in res.values())
    assert abs(res["pipeline (ours)"]["score"] - res["pipeline (ours), onnx backend"]["score"]) < 1e-3
    speed = json.loads(out.read_text())["pipeline_ms_per_image"]
    assert set(speed) == {"torch", "onnx"} and all(v > 0 for row in speed.values() for v in row.values())
    assert "masked_ssim" in proc.stdout and "ms_per_image" in proc.stdout and "ms_per_image_batch2" in proc.stdout


@pytest.mark.slow
def test_baseline_training_resumes_from_its_state(tmp_path):
    """An interrupted baseline run continues where it stopped and only spends what is left of its budget."""
    from torch.utils.data import Dataset

    from research.competition_baseline import train_baseline

    class Tiny(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            return {"gray": torch.rand(1, 32, 32, generator=g), "rgb": torch.rand(3, 32, 32, generator=g)}

    state = tmp_path / "baseline.train_state.pt"
    torch.manual_seed(0)
    first = train_baseline(CompetitionBaseline(encoder="resnet18"), Tiny(), minutes=0.005, batch_size=2,
                           progress=False, state_path=state)
    assert state.is_file() and first["steps"] >= 1
    saved = torch.load(state, weights_only=True)
    assert saved["steps"] == first["steps"] and saved["spent_s"] >= 0.3
    again = train_baseline(CompetitionBaseline(encoder="resnet18"), Tiny(), minutes=0.005, batch_size=2,
                           progress=False, state_path=state)
    assert again["steps"] == first["steps"]           # budget already spent: no new step
    budget = first["minutes"] + 0.05     # the budget counts CPU time: a step of the smp UNets can take a second
    more = train_baseline(CompetitionBaseline(encoder="resnet18"), Tiny(), minutes=budget, batch_size=2,
                          progress=False, state_path=state)
    assert more["steps"] > first["steps"] and more["minutes"] >= budget - 0.01     # minutes are rounded to 0.01


@pytest.mark.slow
def test_benchmark_trains_then_reloads_the_competition_baseline(sample_data, tiny_weights, tmp_path):
    """--baseline-minutes trains and saves the reference; a second run loads it from --baseline-dir."""
    import shutil

    base = tmp_path / "baseline"
    weights = shutil.copytree(tiny_weights, tmp_path / "weights")
    args = ["--data-dir", sample_data, "--weights", weights, "--limit", "1", "--repeats", "1", "--baseline-dir", base,
            "--baseline-encoder", "resnet10t", "--backends", "torch"]      # the ONNX backend has its own test above
    first = run_cli("benchmark.py", *args, "--baseline-minutes", "0.05", "--json", tmp_path / "a.json")
    assert first.returncode == 0, first.stderr[-2000:]
    assert (base / "baseline.safetensors").is_file() and (base / "baseline.train_state.pt").is_file()
    second = run_cli("benchmark.py", *args, "--json", tmp_path / "b.json")
    assert second.returncode == 0, second.stderr[-2000:]
    for name in ("a.json", "b.json"):
        res = json.loads((tmp_path / name).read_text())
        row = res["results"]["competition baseline (UNet-resnet10t x2)"]
        assert 0 < row["score"] < 1 and row["ms_per_image"] > 0
        assert res["baseline_training"]["steps"] >= 1 and res["baseline_training"]["encoder"] == "resnet10t"


def test_benchmark_numeric_options_out_of_range_are_argparse_errors():
    """--limit 0, --repeats 0, --threads 0 / -1, --batch-size 0 and a negative or NaN --baseline-minutes are
    argparse errors (exit 2)."""
    for option, value in (("--limit", "0"), ("--repeats", "0"), ("--threads", "0"), ("--threads", "-1"),
                          ("--batch-size", "0"), ("--baseline-minutes", "-1"), ("--baseline-minutes", "nan")):
        proc = subprocess.run([sys.executable, str(ROOT / "benchmark.py"), option, value], capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 2, (option, value, proc.stderr)
        assert f"argument {option}: expected " in proc.stderr and "or more" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


def test_benchmark_with_a_bad_data_dir_is_one_line_and_exit_2(sample_data, tmp_path):
    """--data-dir /tmp/nonexist showed a traceback ending in a DataError."""
    missing = tmp_path / "nonexist"
    empty = tmp_path / "empty"
    empty.mkdir()
    for data, says in ((missing, f"{missing}: data folder not found"),
                       (empty, f"{empty / 'test.csv'}: file not found")):
        proc = run_cli("benchmark.py", "--data-dir", data)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"error: {says}"), proc.stderr[-2000:]
