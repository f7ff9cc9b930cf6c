"""Where and how the networks run: the device, the precision (mixed precision by the card's capability), and
process-level CPU tuning for the entry points (restore.py, app.py, benchmark.py).

Precision (`amp`, one of AMP_MODES, in the notebooks, tools/train.py, the accelerate launcher and the Restorer):
'auto' picks bf16 autocast where the card computes bf16 natively (CUDA compute capability 8.0 and up: A100, H100,
RTX 30xx/40xx), fp16 autocast with a gradient scaler on 7.x (V100, T4, RTX 20xx: no bf16 units, fp16 tensor
cores), fp32 on older cards (P100 6.0: no tensor cores) and on the CPU (fp32 measured faster there for these
depthwise-conv nets: mask step 1.42 s fp32 vs 1.96 s bf16, batch 8 at 256 px, 2 cores). 'bf16' and 'fp16' are
used as asked (on the CPU too, where PyTorch runs both autocasts); 'off' is fp32.

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
import warnings

import torch

from .configs import AMP_MODES

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


_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cuda_capability(device) -> tuple[int, int] | None:
    """(major, minor) CUDA compute capability of `device`; None for any other device. The one place where the
    precision rule reads the card (a test replaces it to play a T4 or an A100)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return tuple(torch.cuda.get_device_capability(device))


def check_amp(amp) -> str:
    """`amp` as one of AMP_MODES; None means 'auto', False 'off', True 'auto' (mixed precision where the card has
    it). Anything else is an error naming the choices."""
    if amp is None or amp is True:
        return "auto"
    if amp is False:
        return "off"
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {AMP_MODES}, got {amp!r}")
    return amp


def choose_precision(device, amp="auto") -> str:
    """'bf16', 'fp16' or 'off' (fp32): what `amp` (AMP_MODES) means on `device`, by its compute capability
    (`cuda_capability`): 'auto' is bf16 on 8.0 and up, fp16 on 7.x, fp32 below and on the CPU."""
    amp = check_amp(amp)
    capability = cuda_capability(device)
    if amp != "auto":
        if amp == "bf16" and capability is not None and capability < (8, 0):
            warnings.warn(f"amp='bf16' on a card of compute capability {capability[0]}.{capability[1]}, which has no "
                          "native bf16 (emulated: slow); amp='auto' picks fp16 with a gradient scaler there",
                          RuntimeWarning, stacklevel=2)
        return amp
    if capability is None or capability < (7, 0):
        return "off"
    return "bf16" if capability >= (8, 0) else "fp16"


def autocast(device: torch.device, precision: str = "bf16"):
    """Autocast to `precision` ('bf16' or 'fp16') on `device` (CPU or CUDA); a no-op for 'off'. Which precision a
    device gets is `choose_precision`'s decision."""
    if precision == "off":
        return contextlib.nullcontext()
    if precision not in _DTYPES:
        raise ValueError(f"precision must be 'bf16', 'fp16' or 'off', got {precision!r}")
    return torch.autocast(torch.device(device).type, dtype=_DTYPES[precision])


def grad_scaler(device, precision: str) -> torch.amp.GradScaler:
    """The gradient scaler of a training run: active for fp16 (whose small range would flush small gradients to
    zero and overflow on large ones), a pass-through otherwise."""
    return torch.amp.GradScaler(torch.device(device).type, enabled=precision == "fp16")


def is_finite(*values: torch.Tensor) -> bool:
    """True when every (scalar) tensor is finite: the NaN guard of a training step (utils.stages)."""
    return all(math.isfinite(float(v.detach())) for v in values)


__all__ = ["autocast", "check_amp", "choose_precision", "cuda_capability", "grad_scaler", "is_finite",
           "pick_device", "tune_malloc"]
