import json
import subprocess
import sys
from pathlib import Path

import torch

from utils.reference import CompetitionBaseline, baseline_loss, baseline_restore

ROOT = Path(__file__).resolve().parent.parent


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
        losses.append(float(loss))
    assert losses[-1] < losses[0]
    import numpy as np
    out = baseline_restore(model.eval(), np.zeros((100, 80), np.uint8), size=64)
    assert out.shape == (100, 80, 3) and out.dtype == np.uint8


def test_benchmark_prints_scores_and_timings(sample_data, tiny_weights, tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmark.py"), "--data-dir", str(sample_data), "--weights",
                           str(tiny_weights), "--limit", "2", "--repeats", "2", "--baseline-dir", str(tmp_path / "none"),
                           "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(out.read_text())["results"]
    assert set(res) == {"pipeline (ours)", "ours, order mask-inpaint-colorize", "gray copy", "Telea, known mask"}
    assert all(r["ms_per_image"] > 0 and 0 < r["score"] < 1 for r in res.values())
    assert "masked_ssim" in proc.stdout and "ms_per_image" in proc.stdout
