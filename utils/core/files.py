"""Files written atomically: a crash never leaves a half-written file (a temporary file renamed over it)."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to `path`; it replaces `path` only if the block succeeds. On any exception,
    KeyboardInterrupt included (restore.py turns SIGTERM into one), the temporary file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the final file gets the usual permissions
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


def save_json(path, obj) -> None:
    """Write `obj` as indented JSON, atomically; NumPy scalars become numbers, other objects their str()."""
    def default(o):
        if isinstance(o, (np.floating, np.integer)):
            return o.item()
        return str(o)
    write_bytes_atomic(path, json.dumps(obj, indent=2, default=default).encode())


__all__ = ["atomic_path", "save_json", "write_bytes_atomic"]
