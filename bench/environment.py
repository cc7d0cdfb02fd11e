"""The machine and the thread settings a benchmark ran with (printed and stored with the results).

On this AMD EPYC VM numpy's OpenBLAS must pick the right kernels: ``numpy.show_runtime()`` (via
threadpoolctl) reports the core it detected as ``architecture``. If it said something generic
(e.g. ``Prescott``), set ``OPENBLAS_CORETYPE=Haswell`` (AVX2 kernels, the ones OpenBLAS uses for
Zen) before starting Python; we record what was detected so a table can be trusted.
"""
from __future__ import annotations

import os
import platform


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        return None
    return None


def _blas() -> list[dict]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keep = ("user_api", "internal_api", "prefix", "version", "num_threads", "architecture", "threading_layer")
    return [{k: v for k, v in lib.items() if k in keep} for lib in threadpool_info()]


def environment(threads: int | None = None) -> dict:
    import numpy
    import torch
    cores = os.cpu_count() or 1
    torch.set_num_threads(threads or cores)
    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__}
    for mod in ("scipy", "sklearn", "statsmodels"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = None
    import gradfit
    versions["gradfit"] = gradfit.__version__
    env_vars = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                               "OPENBLAS_CORETYPE", "OMP_WAIT_POLICY")}
    blas = _blas()
    openblas = next((b for b in blas if b.get("internal_api") == "openblas"), {})
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    summary = {"cpu": f"{_cpu_model()}, {cores} cores, {_memory_gib()} GiB",
               "torch threads": torch.get_num_threads(),
               "torch BLAS": "MKL" if torch.backends.mkl.is_available() else "other",
               "numpy BLAS": f"OpenBLAS {openblas.get('version')} core {openblas.get('architecture')} "
                             f"threads {openblas.get('num_threads')}" if openblas else "unknown",
               "env": ", ".join(f"{k}={v}" for k, v in env_vars.items() if v) or "no thread variables set",
               "load average at start": "%.2f %.2f %.2f" % load if load else "n/a"}
    return {"summary": summary, "versions": versions, "env_vars": env_vars, "blas": blas,
            "torch_threads": torch.get_num_threads(), "cores": cores}
