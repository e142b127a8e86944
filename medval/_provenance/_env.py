"""Provenance facts recorded in every result: versions, platform, command."""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "command_line",
    "environment_fingerprint",
    "file_sha256",
    "package_versions",
    "platform_summary",
]

_PACKAGES = (
    "medval",
    "numpy",
    "scipy",
    "scikit-learn",
    "pandas",
    "torch",
    "pydicom",
    "mapie",
    "evidently",
    "jinja2",
    "matplotlib",
)


def package_versions() -> dict[str, str]:
    """Installed versions of medval and its dependencies."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


# Settings that change floating-point results (kernel choice, threads): recorded when set.
_NUMERIC_ENV = (
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "CUBLAS_WORKSPACE_CONFIG",
)


def environment_fingerprint(device: Any = None) -> dict[str, Any]:
    """What a re-run on another machine needs to compare against.

    Versions of medval and the numerical stack, Python, the OS, the CPU
    kernel selection torch made (``torch.backends.cpu.get_cpu_capability``),
    the thread count, the deterministic-algorithms flag, the environment
    variables that change kernel choice or threads, and, when ``device`` is
    a CUDA device, the CUDA and cuDNN versions and the GPU name. No host
    name, user name or path.

    Parameters
    ----------
    device : torch.device or str, optional
        The device the model ran on; ``None`` when no model ran (precomputed
        predictions).
    """
    import torch

    versions = package_versions()
    env: dict[str, Any] = {
        name: versions.get(name, "not installed")
        for name in ("medval", "torch", "numpy", "scipy", "scikit-learn", "pydicom")
    }
    env.update(
        {
            "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}",
            "machine": platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch_threads": torch.get_num_threads(),
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "device": "none (precomputed predictions)" if device is None else str(device),
        }
    )
    settings = {k: os.environ[k] for k in _NUMERIC_ENV if os.environ.get(k)}
    if settings:
        env["numeric_settings"] = settings
    if device is not None and torch.device(device).type == "cuda":
        index = torch.device(device).index or 0
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()  # type: ignore[no-untyped-call]
        env["gpu"] = torch.cuda.get_device_name(index)
    return env


def platform_summary() -> str:
    """OS and machine, without host names."""
    return f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command line with paths reduced to their last component.

    Folder names can carry patient names; the last component of a path the
    user chose (an output folder, a spec file) is kept so the run can be
    recognised.
    """
    args = list(sys.argv if argv is None else argv)
    if args:
        args[0] = Path(args[0]).name
    shown = []
    for a in args:
        if "/" in a or "\\" in a:
            key, sep, value = a.partition("=") if a.startswith("-") else ("", "", a)
            a = f"{key}{sep}{Path(value).name}"
        shown.append(a)
    return " ".join(shown)


def file_sha256(path: Path, *, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
