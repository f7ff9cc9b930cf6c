"""Assemble candidate weights from a newly trained colour checkpoint: a copy of --base (the shipped weights/) whose
colour net is replaced by CKPT_DIR's, keeping the base's hue and chroma post-processing settings (not its hue
head, which belongs to the old net: refit it with tools/fit_hue_head.py --save), checksums rewritten.

    python tools/candidate_weights.py ckC candC            # then fit_hue_head, colour_variants, colour_paired
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def assemble(ckpt_dir: Path, out: Path, base: Path) -> dict:
    import utils
    from utils.checkpoints import read_config, write_bytes_atomic, write_checksums

    if out.resolve() == base.resolve():
        raise ValueError(f"{out}: the candidate must not overwrite the base weights")
    utils.checkpoints.verify_checksums(base)
    new = read_config(ckpt_dir / "color.json")
    if new.get("arch") != "ColorizationNet":
        raise ValueError(f"{ckpt_dir / 'color.json'}: not a colour checkpoint")
    old = read_config(base / "color.json")["inference"]
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(base, out, ignore=shutil.ignore_patterns("onnx"))
    shutil.copy(ckpt_dir / "color.safetensors", out / "color.safetensors")
    new["inference"] = {"size": new["inference"]["size"], "chroma_gain": new["inference"].get("chroma_gain", 1.0),
                        **{k: old[k] for k in ("hue", "chroma") if k in old}}
    write_bytes_atomic(out / "color.json", json.dumps(new, indent=2, default=str).encode())
    write_checksums(out)
    utils.load_model(out / "color")          # the weights fit the config
    return new["inference"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpt_dir", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--base", type=Path, default=ROOT / "weights")
    args = ap.parse_args(argv)
    inf = assemble(args.ckpt_dir, args.out, args.base)
    print(f"{args.out}: colour net of {args.ckpt_dir}, chroma gain {inf['chroma_gain']}, post-processing of {args.base}"
          " (no hue head: refit it with tools/fit_hue_head.py --save)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
