"""Start Jupyter Lab on the notebooks with the project's kernel (`make lab` runs this), its kernels talking to the
server over an encrypted channel (CurveZMQ), or over local IPC sockets where pyzmq has no CurveZMQ: over plain TCP
every kernel prints "Kernel is running over TCP without encryption ... susceptible to eavesdropping".

    python tools/lab.py                       # http://127.0.0.1:8888/lab/tree/notebooks
    python tools/lab.py --port 8890           # other Jupyter Lab options are passed on
"""
from __future__ import annotations

import os
import sys


def kernel_transport_args() -> list[str]:
    """Jupyter command-line options that keep kernel traffic off plain TCP (the same as tools/run_notebooks.py's
    kernel_config, for a server)."""
    import zmq

    if zmq.has("curve"):
        return ["--KernelManager.transport_encryption=auto"]
    return [] if sys.platform == "win32" else ["--KernelManager.transport=ipc"]


def main(argv=None) -> int:
    from jupyterlab.labapp import main as lab_main

    args = list(sys.argv[1:] if argv is None else argv)
    defaults = ["--ip=127.0.0.1", "--LabApp.default_url=/lab/tree/notebooks"]
    if not any(a.startswith("--ServerApp.root_dir") for a in args):
        defaults.append(f"--ServerApp.root_dir={os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        defaults.append("--allow-root")
    return lab_main(argv=defaults + kernel_transport_args() + args) or 0


if __name__ == "__main__":
    sys.exit(main())
