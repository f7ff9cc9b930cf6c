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


def checksummed_files(weights_dir) -> list[Path]:
    """What checksums.json covers: every `*.safetensors` and the JSON config beside it (the configs carry the
    architecture and the inference settings, so they are verified as the weights are)."""
    weights_dir = Path(weights_dir)
    files = []
    for p in sorted(weights_dir.glob("*.safetensors")):
        files.append(p)
        if p.with_suffix(".json").is_file():
            files.append(p.with_suffix(".json"))
    return files


def write_checksums(weights_dir) -> dict:
    """Write `checksums.json` (SHA-256 of every checksummed file) into the folder, atomically."""
    weights_dir = Path(weights_dir)
    sums = {p.name: sha256(p) for p in checksummed_files(weights_dir)}
    write_bytes_atomic(weights_dir / "checksums.json", json.dumps(sums, indent=2).encode())
    return sums


def read_config(path) -> dict:
    """A checkpoint's JSON config; a missing or broken file is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint file not found")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a valid JSON config ({e})") from e
    if not isinstance(config, dict):
        raise ValueError(f"{path}: a JSON config must be an object, got {type(config).__name__}")
    return config


def verify_checksums(weights_dir, stems=STAGES) -> None:
    """Raise ChecksumError naming the file whose SHA-256 differs from checksums.json, is missing, or (for the
    `stems`' weights and configs) is not listed; or when checksums.json itself is missing or broken."""
    weights_dir = Path(weights_dir)
    listing = weights_dir / "checksums.json"
    if not listing.is_file():
        raise ChecksumError(f"{listing}: missing, so the weights in {weights_dir} cannot be verified. If you trust "
                            f"these files, write it with `python -c \"import utils; utils.write_checksums('{weights_dir}')\"`"
                            "; Restorer.from_dir(..., verify=False) skips the check")
    try:
        sums = json.loads(listing.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ChecksumError(f"{listing}: not valid JSON ({e})") from e
    for stem in stems:
        for ext in (".safetensors", ".json"):
            name = stem + ext
            if (weights_dir / name).is_file() and name not in sums:
                raise ChecksumError(f"{weights_dir / name}: not listed in {listing.name}, so it cannot be verified; "
                                    "re-export the weights (utils.export_weights) or rewrite the listing "
                                    "(utils.write_checksums) if you trust the file")
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


__all__ = ["ChecksumError", "checksummed_files", "export_weights", "find_weights", "read_config", "verify_checksums",
           "write_checksums", "sha256"]
