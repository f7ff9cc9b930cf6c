"""Checkpoints and shipped weights: safetensors + JSON config per network (never pickle), the resumable
training state, SHA-256 checksums written at every save and export and verified at load, and where the
weights are (`default_weights`, `find_weights`)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .files import atomic_path, write_bytes_atomic
from .models import build_model
from .paths import project_dir

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
        raise ChecksumError(
            f"{listing}: missing, so the weights in {weights_dir} cannot be verified. If you trust "
            f"these files, write it with `python -c \"import utils; utils.write_checksums('{weights_dir}')\"`"
            "; Restorer.from_dir(..., verify=False) skips the check"
        )
    try:
        sums = json.loads(listing.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ChecksumError(f"{listing}: not valid JSON ({e})") from e
    for stem in stems:
        for ext in (".safetensors", ".json"):
            name = stem + ext
            if (weights_dir / name).is_file() and name not in sums:
                raise ChecksumError(
                    f"{weights_dir / name}: not listed in {listing.name}, so it cannot be verified; "
                    "re-export the weights (utils.export_weights) or rewrite the listing "
                    "(utils.write_checksums) if you trust the file"
                )
    for name, want in sums.items():
        p = weights_dir / name
        if not p.is_file():
            raise ChecksumError(f"{p}: listed in checksums.json but missing")
        got = sha256(p)
        if got != want:
            raise ChecksumError(
                f"{p}: SHA-256 {got[:16]}... does not match checksums.json ({want[:16]}...); "
                "the file is corrupt or was changed"
            )


def save_model(model: torch.nn.Module, config: dict, path_stem) -> Path:
    """Write `<stem>.safetensors` (weights) and `<stem>.json` (config), each atomically."""
    stem = Path(path_stem)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(stem.with_suffix(".safetensors")) as tmp:
        save_file(state, str(tmp))
    write_bytes_atomic(stem.with_suffix(".json"), json.dumps(config, indent=2, default=str).encode())
    write_checksums(stem.parent)  # the folder's checksums.json covers what was just written
    return stem.with_suffix(".safetensors")


def load_model(path_stem, device="cpu") -> tuple[torch.nn.Module, dict]:
    """Load `<stem>.json` + `<stem>.safetensors` (no pickle involved)."""
    stem = Path(path_stem)
    if stem.suffix in (".json", ".safetensors"):
        stem = stem.with_suffix("")
    cfg_path, w_path = stem.with_suffix(".json"), stem.with_suffix(".safetensors")
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: checkpoint file not found")
    config = read_config(cfg_path)
    model = build_model(config)
    try:
        model.load_state_dict(load_file(str(w_path), device="cpu"))
    except Exception as e:
        raise ValueError(f"{w_path}: weights do not fit the config in {cfg_path.name} ({e})") from e
    return model.to(device).eval(), config


def update_inference_config(path_stem, **options) -> dict:
    """Set inference options (e.g. chroma_gain) in a checkpoint's JSON config, atomically."""
    cfg_path = Path(path_stem).with_suffix(".json")
    config = read_config(cfg_path)
    config.setdefault("inference", {}).update(options)
    write_bytes_atomic(cfg_path, json.dumps(config, indent=2, default=str).encode())
    if (cfg_path.parent / "checksums.json").is_file():
        write_checksums(cfg_path.parent)
    return config


def save_train_state(path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_train_state(path) -> dict | None:
    path = Path(path)
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


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


def default_weights(weights=None, ckpt_dir=None) -> Path | None:
    """Where restore.py, the app, the benchmark and notebook 05 take their weights from: `weights` when given
    (a directory, or None/'auto'), else the repository's shipped weights/ when complete, else `ckpt_dir`
    (default: the checkpoints/ that notebooks 02-04 write). None when no candidate holds all three stages."""
    if weights not in (None, "auto"):
        return find_weights(weights)
    return find_weights(project_dir("weights"), project_dir("checkpoints", ckpt_dir))


__all__ = [
    "ChecksumError",
    "checksummed_files",
    "default_weights",
    "export_weights",
    "find_weights",
    "load_model",
    "load_train_state",
    "read_config",
    "save_model",
    "save_train_state",
    "sha256",
    "update_inference_config",
    "verify_checksums",
    "write_checksums",
]
