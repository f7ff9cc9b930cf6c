"""ONNX Runtime backend: the mask and colour networks exported to ONNX and run by onnxruntime on the CPU; the
inpainter stays in PyTorch (its Fourier units through ONNX Runtime's DFT made a 70-image restore.py run 0.83 s per
image, against 0.52 s with it in PyTorch), so it is not exported.

Where the files live: they are derived from the shipped weights, so they are not shipped (and git-ignored);
they are exported on demand into a cache next to the weights, `<weights>/onnx/`, by `export_onnx(weights_dir)`
(run by `Restorer.from_dir(..., backend="onnx")` when the cache is missing or stale, or by hand:
`python -m utils.onnx_backend WEIGHTS_DIR`). The cache holds mask.onnx, color.onnx and manifest.json: for each
ONNX file its SHA-256 and the SHA-256 of the safetensors (and the architecture) it was exported from.

Loading verifies, as for the safetensors: the weights' checksums first (by the caller), then each ONNX file's
bytes against the manifest; a mismatch raises ChecksumError naming the file (delete `<weights>/onnx/` to
export again), and the session is built from the verified bytes, so no unverified byte is ever parsed. A
cache exported from other weights (the safetensors changed) is stale and exported again.

What is exported: each network's forward pass, with a dynamic batch and image size (opset 18, the TorchScript
exporter). The colour net's graph ends in its chroma in NHWC layout ([B,H,W,2]): the class head's 169-bin
annealed-mean decode is a softmax over the last axis and a [169,2] matmul, which ONNX Runtime runs about 5x
faster than a softmax over the channel axis. Outputs equal PyTorch's within ONNX_TOLERANCE (tests/test_onnx.py).
"""
from __future__ import annotations

import hashlib
import io
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from .files import write_bytes_atomic
from .checkpoints import ChecksumError, sha256

OPSET = 18
EXPORT_FORMAT = 4   # 4: the mask and colour nets only, the colour net's chroma alone; older caches are exported again
STAGES = ("mask", "color")      # the networks run by onnxruntime (the inpainter runs in PyTorch)
CACHE_DIR = "onnx"
MANIFEST = "manifest.json"
# max |ONNX - PyTorch| of each network's float output (mask logits, chroma 0-1), measured on the shipped weights
# at 1.7e-5 and 1e-6; the restored uint8 images then differ by at most 1 level in a few pixels (tests/test_onnx.py
# checks both)
ONNX_TOLERANCE = {"mask": 1e-3, "color": 1e-4}


class _ColorNHWC(torch.nn.Module):
    """The colour net's chroma as [B,H,W,2], what the pipeline consumes (decode included)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, gray, mask):
        return self.net(gray, mask).permute(0, 2, 3, 1)


def _export_one(net: torch.nn.Module, stage: str, size: int) -> bytes:
    """The mask or colour network -> ONNX bytes (dynamic batch, height and width)."""
    names = {"mask": ["gray"], "color": ["gray", "mask"]}[stage]
    module = _ColorNHWC(net) if stage == "color" else net
    args = tuple(torch.rand(2, 1, size, size) for _ in names)
    axes = {n: {0: "batch", 2: "height", 3: "width"} for n in names}
    axes["out"] = {0: "batch", 1: "height", 2: "width"} if stage == "color" else {0: "batch", 2: "height", 3: "width"}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # the TorchScript exporter's deprecation notice
        torch.onnx.export(module.eval(), args, buf, dynamo=False, opset_version=OPSET, input_names=names,
                          output_names=["out"], dynamic_axes=axes)
    return buf.getvalue()


def _source_record(weights_dir: Path, stage: str) -> dict:
    cfg = json.loads((weights_dir / f"{stage}.json").read_text())
    return {"weights": sha256(weights_dir / f"{stage}.safetensors"),
            "arch": cfg.get("arch"), "kwargs": cfg.get("kwargs", {})}


def read_manifest(cache: Path) -> dict | None:
    try:
        return json.loads((cache / MANIFEST).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def is_current(weights_dir, cache=None) -> bool:
    """Whether the cache was exported from these weights (it may still be corrupt: `load_onnx_nets` checks)."""
    weights_dir = Path(weights_dir)
    cache = Path(cache) if cache else weights_dir / CACHE_DIR
    manifest = read_manifest(cache)
    if not manifest or manifest.get("opset") != OPSET or manifest.get("format") != EXPORT_FORMAT:
        return False
    files = manifest.get("files", {})
    return all(files.get(f"{s}.onnx", {}).get("source") == _source_record(weights_dir, s) for s in STAGES)


def export_onnx(weights_dir, cache=None) -> Path:
    """Export the mask and colour networks of `weights_dir` to `<weights_dir>/onnx/` (or `cache`) with a manifest of
    checksums; every file is written atomically, the manifest last. Returns the cache folder."""
    from .checkpoints import load_model

    weights_dir = Path(weights_dir)
    cache = Path(cache) if cache else weights_dir / CACHE_DIR
    cache.mkdir(parents=True, exist_ok=True)
    files = {}
    for stage in STAGES:
        net, cfg = load_model(weights_dir / stage, "cpu")
        size = cfg.get("inference", {}).get("size", 256)
        data = _export_one(net, stage, size if isinstance(size, int) else 256)
        write_bytes_atomic(cache / f"{stage}.onnx", data)
        files[f"{stage}.onnx"] = {"sha256": sha256(cache / f"{stage}.onnx"), "source": _source_record(weights_dir, stage)}
    manifest = {"opset": OPSET, "format": EXPORT_FORMAT, "torch": torch.__version__, "files": files}
    write_bytes_atomic(cache / MANIFEST, json.dumps(manifest, indent=2).encode())
    return cache


class OnnxNet:
    """One network in an onnxruntime session, called like the torch nets in `utils.pipeline`:
    float32 NCHW arrays in, a float32 torch tensor out (NCHW; the colour net's NHWC output as an NCHW view)."""

    device = torch.device("cpu")

    def __init__(self, model_bytes: bytes, nhwc_output: bool = False, threads: int | None = None):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = threads or torch.get_num_threads()
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-waiting between calls
        self.session = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.nhwc_output = nhwc_output

    def _feed(self, arrays) -> dict:
        return {n: np.ascontiguousarray(a, dtype=np.float32) for n, a in zip(self.input_names, arrays)}

    def __call__(self, *arrays) -> torch.Tensor:
        out = torch.from_numpy(self.session.run(["out"], self._feed(arrays))[0])
        return out.permute(0, 3, 1, 2) if self.nhwc_output else out


def load_onnx_nets(weights_dir, cache=None, export: bool = True, threads: int | None = None) -> dict:
    """{stage: OnnxNet} from the verified cache of `weights_dir` (exported first when missing or stale and
    `export` is true). The caller verifies the safetensors' checksums; this verifies the ONNX files."""
    weights_dir = Path(weights_dir)
    cache = Path(cache) if cache else weights_dir / CACHE_DIR
    if not is_current(weights_dir, cache):
        if not export:
            raise FileNotFoundError(f"{cache}: no ONNX export of {weights_dir}'s weights; run "
                                    f"`python -m utils.onnx_backend {weights_dir}`")
        try:
            export_onnx(weights_dir, cache)
        except OSError as e:
            raise OSError(f"{cache}: cannot write the ONNX export ({e}); export elsewhere with "
                          f"`python -m utils.onnx_backend {weights_dir} --cache DIR`") from e
    files = read_manifest(cache)["files"]
    nets = {}
    for stage in STAGES:
        path = cache / f"{stage}.onnx"
        data = path.read_bytes() if path.is_file() else None
        if data is None:
            raise ChecksumError(f"{path}: listed in {MANIFEST} but missing; delete {cache} to export again")
        got, want = hashlib.sha256(data).hexdigest(), files[path.name]["sha256"]
        if got != want:
            raise ChecksumError(f"{path}: SHA-256 {got[:16]}... does not match {MANIFEST} ({want[:16]}...); the file "
                                f"is corrupt or was changed; delete {cache} to export again")
        nets[stage] = OnnxNet(data, nhwc_output=stage == "color", threads=threads)
    return nets


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="Export the mask and colour networks of a weights folder to ONNX.")
    ap.add_argument("weights_dir", type=Path)
    ap.add_argument("--cache", type=Path, default=None, help="output folder (default: WEIGHTS_DIR/onnx)")
    args = ap.parse_args(argv)
    from .checkpoints import verify_checksums

    if (args.weights_dir / "checksums.json").exists():
        verify_checksums(args.weights_dir)
    out = export_onnx(args.weights_dir, args.cache)
    print(f"exported {', '.join(f'{s}.onnx' for s in STAGES)} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["ONNX_TOLERANCE", "STAGES", "OnnxNet", "export_onnx", "is_current", "load_onnx_nets"]
