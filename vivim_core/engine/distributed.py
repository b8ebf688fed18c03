"""Device choice and torch DDP under `torchrun`: the same command runs on one device or on several.

`torchrun --nproc_per_node N -m vivim_core train ...` sets RANK, LOCAL_RANK and WORLD_SIZE; when WORLD_SIZE > 1
we join the process group (NCCL on CUDA, gloo on the CPU), each process takes GPU LOCAL_RANK, and only rank 0
writes files or reports progress.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import VivimError


class DeviceError(VivimError, ValueError):
    """A device that was asked for but is not available."""


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """The torch.device a --device option names: 'auto' -> GPU `local_rank` when CUDA is available, else the CPU;
    'cuda' -> GPU `local_rank`; 'cuda:N' -> GPU N; 'cpu'. DeviceError (a VivimError) for a device that is not
    there or an unknown name."""
    name = (name or "auto").lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError("--device cuda was asked for but this PyTorch sees no CUDA GPU (a CPU-only build, or no "
                              "driver); use --device cpu, or install a CUDA build of PyTorch (see README)")
        index = int(name.split(":")[1]) if ":" in name else local_rank
        if index >= torch.cuda.device_count():
            raise DeviceError(f"GPU {index} was asked for but only {torch.cuda.device_count()} are visible")
        return torch.device("cuda", index)
    if name != "cpu":
        raise DeviceError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device("cpu")


@dataclass
class DistributedContext:
    """Where this process stands: rank, world size, its device. `world_size == 1`: plain single-process run."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    initialised_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum a float64 tensor over processes (in place; returned for convenience)."""
        if self.enabled:
            on = values.to(self.device) if self.device.type == "cuda" else values
            dist.all_reduce(on, op=dist.ReduceOp.SUM)
            values.copy_(on.cpu())
        return values

    def any(self, flag: bool) -> bool:
        """True on every process when it is True on any (for stop decisions that must agree)."""
        if not self.enabled:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], dtype=torch.float64)
        return bool(self.all_reduce_sum(value).item() > 0)

    def close(self) -> None:
        """Leave the process group (when this context joined it): every rank reaches the barrier first, so none
        tears down while another still communicates; destroying the group then stops its worker threads."""
        if self.initialised_here and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def import_before_init_process_group() -> None:
    """Import what DDP imports (torch._dynamo, which pulls in torch.distributed.fsdp) before the process group
    exists. One of those modules takes `dist.group.WORLD` as a default argument when it is imported: imported
    after init_process_group, it holds the group forever, destroy_process_group() cannot stop the group's
    worker threads (gloo keeps two), and at exit a worker still releasing the last collective's tensors needs
    the interpreter lock while the interpreter finalises: the process aborts ("terminate called without an
    active exception"), rarely, on a loaded machine. Code that starts the group itself should call this
    first."""
    import torch._dynamo  # noqa: F401  (imported for its side effect on later imports, see above)


def setup_distributed(device: str = "auto") -> DistributedContext:
    """Read torchrun's environment; join the process group when WORLD_SIZE > 1. Returns this process's context."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device, local_rank)
    if world_size <= 1:
        return DistributedContext(0, 0, 1, resolved)
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    initialised_here = False
    if not dist.is_initialized():
        import_before_init_process_group()
        backend = "nccl" if resolved.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
        initialised_here = True
    return DistributedContext(rank, local_rank, world_size, resolved, initialised_here)
