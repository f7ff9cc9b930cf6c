"""Where and how the networks run: the device, bf16 autocast, and process-level CPU tuning for the entry points
(restore.py, app.py, benchmark.py).

glibc returns every large freed block (the networks' activations, tens of MB) to the kernel and page-faults it
back on the next call; keeping the memory (what the Makefile's GLIBC_TUNABLES does for the notebooks) makes the
pipeline about 1.5x faster on the CPU (measured: colour net 110 ms per image at batch 4, 2 threads; 165 ms without).
`tune_malloc()` sets the same two thresholds from inside the process with mallopt(3); outputs are unchanged.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import math
import os
import platform

import torch

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_ONE_GB = 1 << 30


def tune_malloc() -> bool:
    """Keep freed large blocks in the heap (glibc only; a no-op elsewhere or when GLIBC_TUNABLES is set).
    Returns whether the thresholds were set."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or os.environ.get("GLIBC_TUNABLES"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(_ONE_GB))
                    and libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(_ONE_GB)))
    except (OSError, AttributeError):
        return False


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' asked for, but CUDA is not available")
    return torch.device(name)


def default_amp(device: torch.device) -> bool:
    """bf16 autocast on CUDA; fp32 on CPU, where it measured faster for these depthwise-conv nets
    (with the glibc malloc tunables: mask step 1.42 s fp32 vs 1.96 s bf16, batch 8 at 256 px, 2 cores)."""
    return torch.device(device).type == "cuda"


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on `device` (CPU or CUDA); a no-op when disabled. Whether to enable it is `default_amp`'s
    decision: on CUDA yes, on the CPU no (fp32 measured faster there for these nets)."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def is_finite(*values: torch.Tensor) -> bool:
    """True when every (scalar) tensor is finite: the NaN guard of a training step (utils.stages)."""
    return all(math.isfinite(float(v.detach())) for v in values)


__all__ = ["autocast", "default_amp", "is_finite", "pick_device", "tune_malloc"]
