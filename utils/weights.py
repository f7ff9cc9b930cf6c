"""Shipped weights: SHA-256 checksums written at export and verified at load."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .imageio import write_bytes_atomic

STAGES = ("mask", "color", "inpaint")


class ChecksumError(RuntimeError):
    pass


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_checksums(weights_dir) -> dict:
    weights_dir = Path(weights_dir)
    sums = {p.name: sha256(p) for p in sorted(weights_dir.glob("*.safetensors"))}
    write_bytes_atomic(weights_dir / "checksums.json", json.dumps(sums, indent=2).encode())
    return sums


def verify_checksums(weights_dir) -> None:
    """Raise ChecksumError naming the file whose SHA-256 differs from checksums.json (or is missing)."""
    weights_dir = Path(weights_dir)
    sums = json.loads((weights_dir / "checksums.json").read_text())
    for name, want in sums.items():
        p = weights_dir / name
        if not p.is_file():
            raise ChecksumError(f"{p}: listed in checksums.json but missing")
        got = sha256(p)
        if got != want:
            raise ChecksumError(f"{p}: SHA-256 {got[:16]}... does not match checksums.json ({want[:16]}...); "
                                "the file is corrupt or was changed")


def export_weights(ckpt_dir, weights_dir) -> dict:
    """Copy the three stages' final checkpoints (safetensors + JSON) into weights_dir with checksums."""
    ckpt_dir, weights_dir = Path(ckpt_dir), Path(weights_dir)
    weights_dir.mkdir(parents=True, exist_ok=True)
    for stage in STAGES:
        for ext in (".safetensors", ".json"):
            src = ckpt_dir / f"{stage}{ext}"
            if not src.is_file():
                raise FileNotFoundError(f"{src}: missing; train the {stage} stage first")
            write_bytes_atomic(weights_dir / src.name, src.read_bytes())
    return write_checksums(weights_dir)


def find_weights(*candidates) -> Path | None:
    """The first directory holding all three stages' checkpoints."""
    for c in candidates:
        if c and all((Path(c) / f"{s}.safetensors").is_file() for s in STAGES):
            return Path(c)
    return None


__all__ = ["ChecksumError", "export_weights", "find_weights", "verify_checksums", "write_checksums", "sha256"]
