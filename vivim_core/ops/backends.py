"""The implementations of the selective scan and the causal conv1d, loaded on demand, and `auto`'s pick.

scan:  mamba_ssm (official fused CUDA kernels, `[cuda]` extra), triton (ours, CUDA: `scan.cuda`), numba (ours,
       CPU: `scan.cpu.numba_scan`), chunked (PyTorch, any device: `scan.cpu.chunked`), reference (the sequential
       recurrence, the test oracle: only when asked for by name).
conv:  causal_conv1d (official CUDA kernel, `[cuda]` extra), torch (`conv.causal`).

Which one `auto` takes on each device is `scan.policy.AUTO_BACKENDS`. Optional imports are probed once and cached;
a backend asked for by name that cannot run raises BackendUnavailableError naming the install command.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import threading
from dataclasses import dataclass
from typing import Callable, Iterator

from ..errors import VivimError
from .scan.policy import AUTO_BACKENDS

INSTALL_CUDA_EXTRA = "pip install 'vivim-studio[cuda]'  (builds mamba-ssm and causal-conv1d; needs a CUDA toolkit)"


class BackendUnavailableError(VivimError, RuntimeError):
    """A backend was asked for by name but cannot run here."""


@dataclass(frozen=True)
class Backend:
    name: str
    needs_cuda: bool
    loader: Callable[[], Callable]  # returns the kernel function; raises ImportError when missing
    install_hint: str
    package: str | None = None  # the third-party package it needs, looked up (not imported) at import time
    cpu_only: bool = False


def _load_mamba_scan():
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn  # type: ignore[import-not-found]

    return selective_scan_fn


def _load_cuda_scan():
    module = importlib.import_module(f"{__package__}.scan.cuda")
    module.load_kernels()  # imports Triton: raises where it is missing or broken
    return module.selective_scan_cuda


def _load_numba_scan():
    from .scan.cpu.numba_scan import selective_scan_numba

    return selective_scan_numba


def _load_chunked_scan():
    from .scan.cpu.chunked import selective_scan_chunked

    return selective_scan_chunked


def _load_reference_scan():
    from .scan.reference import selective_scan_reference

    return selective_scan_reference


def _load_causal_conv1d():
    from causal_conv1d import causal_conv1d_fn  # type: ignore[import-not-found]

    return causal_conv1d_fn


def _load_torch_conv():
    from .conv.causal import causal_conv1d_torch

    return causal_conv1d_torch


SCAN_BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("mamba_ssm", True, _load_mamba_scan, INSTALL_CUDA_EXTRA, package="mamba_ssm"),
        Backend("triton", True, _load_cuda_scan, "pip install triton (ships with CUDA builds of PyTorch on Linux)",
                package="triton"),
        Backend("numba", False, _load_numba_scan, "pip install numba", package="numba", cpu_only=True),
        Backend("chunked", False, _load_chunked_scan, "part of vivim-core"),
        Backend("reference", False, _load_reference_scan, "part of vivim-core"),
    )
}
CONV_BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend("causal_conv1d", True, _load_causal_conv1d, INSTALL_CUDA_EXTRA, package="causal_conv1d"),
        Backend("torch", False, _load_torch_conv, "part of vivim-core"),
    )
}
_TABLES = {"scan": SCAN_BACKENDS, "conv": CONV_BACKENDS}


# Packages that are not installed at all, found without importing anything. torch.compile traces `resolve`;
# a failing import inside the traced code would break the compiled graph at every scan (one break per block).
_MISSING_PACKAGES = frozenset(
    b.package for b in (*SCAN_BACKENDS.values(), *CONV_BACKENDS.values())
    if b.package and importlib.util.find_spec(b.package) is None
)
_PROBED: dict[tuple[str, str], tuple[Callable | None, str]] = {}


def _probe(kind: str, name: str) -> tuple[Callable | None, str]:
    """(kernel, "") when the backend imports, else (None, reason). Probed once, then cached."""
    key = (kind, name)
    if key not in _PROBED:
        backend = _TABLES[kind][name]
        if backend.package in _MISSING_PACKAGES:
            _PROBED[key] = (None, f"ModuleNotFoundError: No module named '{backend.package}'")
        else:
            try:
                _PROBED[key] = (backend.loader(), "")
            except Exception as exc:  # ImportError, or a CUDA extension built for another torch (OSError...)
                _PROBED[key] = (None, f"{type(exc).__name__}: {exc}")
    return _PROBED[key]


def load_backends(on_cuda: bool) -> None:
    """Probe every backend that can run here, and import the lazily loaded GPU kernels, now rather than at the
    first call. torch.compile traces those first calls: a probe or an import inside the trace splits the compiled
    model into a graph per block, each guarded on the caches (and recompiled). Call it before compiling a model."""
    for kind, table in _TABLES.items():
        for name, backend in table.items():
            if runs_on(backend, on_cuda):
                _probe(kind, name)
    if on_cuda:
        from .optional import load_optional_kernels

        load_optional_kernels()


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def backend_status(kind: str) -> dict[str, dict[str, object]]:
    """For `vivim-core info`: each backend's importability and whether it can run on this machine."""
    cuda = _cuda_available()
    status = {}
    for name, backend in _TABLES[kind].items():
        if backend.needs_cuda and not cuda:  # CPU-only installs never import the GPU kernels
            status[name] = {"available": False, "reason": "needs a CUDA GPU (none here)", "install": backend.install_hint}
            continue
        fn, reason = _probe(kind, name)
        status[name] = {"available": fn is not None, "reason": reason, "install": backend.install_hint}
    return status


_override = threading.local()


@contextlib.contextmanager
def use_backends(scan: str | None = None, conv: str | None = None) -> Iterator[None]:
    """Make `auto` resolve to the given backends inside the block (e.g. the reference, in tests)."""
    for kind, name in (("scan", scan), ("conv", conv)):
        if name is not None and name not in _TABLES[kind]:
            raise ValueError(f"unknown {kind} backend {name!r}; choose from {sorted(_TABLES[kind])}")
    previous = getattr(_override, "value", (None, None))
    _override.value = (scan or previous[0], conv or previous[1])
    try:
        yield
    finally:
        _override.value = previous


def runs_on(backend: Backend, on_cuda: bool) -> bool:
    """Whether a backend can take tensors on a CUDA GPU (on_cuda) or on the CPU."""
    return not backend.cpu_only if on_cuda else not backend.needs_cuda


def resolve(kind: str, name: str, on_cuda: bool) -> tuple[str, Callable]:
    """The backend name and kernel for a call whose tensors live on CUDA (on_cuda) or not."""
    table = _TABLES[kind]
    if name == "auto":
        forced = getattr(_override, "value", (None, None))[0 if kind == "scan" else 1]
        if forced is not None:
            name = forced
        else:
            for candidate in AUTO_BACKENDS[kind]["cuda" if on_cuda else "cpu"]:
                fn, _ = _probe(kind, candidate)
                if fn is not None:
                    return candidate, fn
            raise BackendUnavailableError(f"no {kind} backend can run here")  # unreachable: torch always is
    if name not in table:
        raise ValueError(f"unknown {kind} backend {name!r}; choose from 'auto', {', '.join(sorted(table))}")
    backend = table[name]
    fn, reason = _probe(kind, name)
    if fn is None:
        raise BackendUnavailableError(
            f"{kind} backend {name!r} is not installed ({reason}). Install it with: {backend.install_hint}. "
            f"Or use backend='auto', which picks the fastest one that is installed."
        )
    if backend.cpu_only and on_cuda:
        raise BackendUnavailableError(
            f"{kind} backend {name!r} runs on CPU tensors only; these tensors are on a CUDA GPU. "
            f"Use backend='auto' or 'triton' on the GPU."
        )
    if backend.needs_cuda and not on_cuda:
        raise BackendUnavailableError(
            f"{kind} backend {name!r} runs on CUDA tensors only; these tensors are on the CPU. "
            f"Use backend='auto' or 'chunked' on the CPU."
        )
    return name, fn


def chosen_backend(kind: str, on_cuda: bool) -> str:
    """What `auto` picks for tensors on CUDA (on_cuda=True) or on the CPU."""
    return resolve(kind, "auto", on_cuda)[0]
