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


def test_baseline_training_resumes_from_its_state(tmp_path):
    """An interrupted baseline run continues where it stopped and only spends what is left of its budget."""
    from torch.utils.data import Dataset

    from utils.reference import train_baseline

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
    more = train_baseline(CompetitionBaseline(encoder="resnet18"), Tiny(), minutes=0.02, batch_size=2,
                          progress=False, state_path=state)
    assert more["steps"] > first["steps"] and more["minutes"] >= 0.02
