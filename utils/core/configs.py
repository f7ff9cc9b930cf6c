"""Settings dataclasses read from a checkpoint's JSON (RefineConfig, HueConfig): unknown keys are
named in a warning, never silently dropped (a renamed field in an old file would otherwise fall back to its
default unnoticed)."""
from __future__ import annotations

import dataclasses
import warnings

# the precisions a training run or the Restorer can ask for (utils.runtime.choose_precision says what each means)
AMP_MODES = ("auto", "bf16", "fp16", "off")
# the hole's first fills that the inpainter can refine (utils.prefill)
PREFILLS = ("biharmonic", "telea")


class UnknownConfigKeysWarning(UserWarning):
    pass


def known_fields(cls, d: dict | None) -> dict:
    """The entries of `d` that are fields of the dataclass `cls`; a warning names the others."""
    d = dict(d or {})
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - fields)
    if unknown:
        warnings.warn(f"{cls.__name__}: unknown keys {unknown} ignored (known: {sorted(fields)})",
                      UnknownConfigKeysWarning, stacklevel=3)
    return {k: v for k, v in d.items() if k in fields}


__all__ = ["AMP_MODES", "PREFILLS", "UnknownConfigKeysWarning", "known_fields"]
