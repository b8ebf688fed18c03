"""The affine prior: a small MLP that regresses the affine transform between two boundary patches.

    prior = load_affine_prior()                     # the bundled resources/affine_prior.safetensors
    theta = prior(reference_patches, target_patches)   # (M, P, P) each -> (M, 2, 3)

`theta` is in the normalised patch coordinates of `torch.nn.functional.affine_grid` ([-1, 1] across the
patch, align_corners=False): the target is the reference sampled at transformed points,
target(u) = reference(theta @ [u, 1]). Aligned patches give the identity [[1, 0, 0], [0, 1, 0]].

The reference code downloads InverseForm's 224x224, ~100M-parameter network. Ours sees 16x16 patches and
has about 0.4M parameters (1.6 MB); this project trains it on synthetic edge patches
(`vivim_core.losses.affine_training`, `vivim-core train-affine-prior`). During Vivim training it is frozen.
The file is safetensors; its metadata records the architecture and how it was trained.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from ..errors import VivimError
from ..resources import resource_path

FORMAT_NAME = "vivim-affine-prior"
FORMAT_VERSION = 1
DEFAULT_PRIOR_PATH = resource_path("affine_prior.safetensors")
IDENTITY = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))


class AffinePriorError(VivimError, ValueError):
    """An affine prior file that is missing or unreadable (the message names the file and the fix)."""


class AffinePrior(nn.Module):
    """MLP: [reference patch, target patch] (2 * P * P values in [0, 1]) -> 6 affine parameters.

    The last layer starts at zero with an identity bias, so an untrained prior answers "identity".
    forward(reference (M, P, P) or (M, 1, P, P), target (same)) -> theta (M, 2, 3).
    """

    def __init__(self, patch_size: int = 16, hidden_dims: tuple[int, ...] = (512, 256)):
        super().__init__()
        self.patch_size = int(patch_size)
        self.hidden_dims = tuple(int(h) for h in hidden_dims)
        layers: list[nn.Module] = []
        width = 2 * self.patch_size**2
        for hidden in self.hidden_dims:
            layers += [nn.Linear(width, hidden), nn.GELU()]
            width = hidden
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(width, 6)
        nn.init.zeros_(self.head.weight)
        with torch.no_grad():
            self.head.bias.copy_(torch.tensor(IDENTITY).flatten())

    def forward(self, reference: Tensor, target: Tensor) -> Tensor:
        p = self.patch_size
        if reference.shape[-2:] != (p, p) or target.shape[-2:] != (p, p):
            raise ValueError(f"the affine prior takes {p}x{p} patches, got {tuple(reference.shape)} and "
                             f"{tuple(target.shape)}")
        pair = torch.cat([reference.reshape(-1, p * p), target.reshape(-1, p * p)], dim=1)
        pair = pair.to(self.head.weight.dtype) * 2.0 - 1.0  # [0, 1] -> [-1, 1]
        return self.head(self.layers(pair)).reshape(-1, 2, 3)

    def architecture(self) -> dict[str, Any]:
        return {"patch_size": self.patch_size, "hidden_dims": list(self.hidden_dims)}


def identity_affine(n: int = 1, dtype: torch.dtype = torch.float32, device: Any = None) -> Tensor:
    """(n, 2, 3) identity transforms."""
    return torch.tensor(IDENTITY, dtype=dtype, device=device).expand(n, 2, 3).clone()


def save_affine_prior(prior: AffinePrior, path: str | os.PathLike, training: Mapping[str, Any] | None = None) -> Path:
    """Write the prior (float32) with its architecture and training record in the safetensors metadata."""
    from safetensors.torch import save_file

    from .. import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().float().contiguous() for k, v in prior.state_dict().items()}
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "architecture": json.dumps(prior.architecture()),
        "training": json.dumps(dict(training or {}), sort_keys=True, default=str),
        "vivim_version": __version__,
    }
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


MAX_PATCH_SIZE = 64
MAX_HIDDEN_WIDTH = 8192


def _prior_header(path: str | os.PathLike | None):
    from ..checkpoint_header import read_safetensors_header

    path = Path(path) if path is not None else DEFAULT_PRIOR_PATH
    if not path.exists():
        hint = ("the bundled prior is missing from this installation; " if path == DEFAULT_PRIOR_PATH else "")
        raise AffinePriorError(f"affine prior {path} not found: {hint}train one with `vivim-core train-affine-prior "
                               f"--out {path}` (a few minutes on a CPU), or turn the boundary loss off")
    return read_safetensors_header(path, "affine prior", error=AffinePriorError)


def _checked_info(header) -> dict[str, Any]:
    from ..checkpoint_header import loads_json

    path, metadata = header.path, header.metadata
    if metadata.get("format") != FORMAT_NAME:
        raise AffinePriorError(f"{path} is a safetensors file but not a Vivim affine prior (no '{FORMAT_NAME}' "
                               f"metadata); give the file written by `vivim-core train-affine-prior`")
    version = metadata.get("format_version", "")
    if not (version.isdigit() and len(version) < 6 and 1 <= int(version) <= FORMAT_VERSION):
        raise AffinePriorError(f"affine prior {path} has format version {version[:20]!r}; this vivim-core reads "
                               f"version {FORMAT_VERSION}: update vivim-core, or retrain the prior")
    architecture = loads_json(metadata.get("architecture", ""), f"affine prior {path}: its architecture",
                              error=AffinePriorError)
    training = loads_json(metadata.get("training") or "{}", f"affine prior {path}: its training record",
                          error=AffinePriorError)
    patch = architecture.get("patch_size") if isinstance(architecture, dict) else None
    hidden = architecture.get("hidden_dims") if isinstance(architecture, dict) else None
    if not (type(patch) is int and 4 <= patch <= MAX_PATCH_SIZE and isinstance(hidden, list) and 1 <= len(hidden) <= 8
            and all(type(h) is int and 1 <= h <= MAX_HIDDEN_WIDTH for h in hidden)):
        raise AffinePriorError(f"affine prior {path}: its architecture {str(architecture)[:100]} is not a patch size "
                               f"of 4 to {MAX_PATCH_SIZE} and 1 to 8 hidden widths of at most {MAX_HIDDEN_WIDTH}; "
                               f"retrain it with `vivim-core train-affine-prior --out {path}`")
    if not isinstance(training, dict):
        raise AffinePriorError(f"affine prior {path}: its training record is not a JSON object")
    return {"architecture": architecture, "training": training, "path": str(path)}


def read_affine_prior_info(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """{'architecture': {...}, 'training': {...}, 'path'} of a prior file (default: the bundled one), checked
    (the file is untrusted: header limits, known format, bounded architecture)."""
    return _checked_info(_prior_header(path))


def load_affine_prior(path: str | os.PathLike | None = None, device: Any = "cpu") -> AffinePrior:
    """The frozen prior stored at `path` (default: resources/affine_prior.safetensors), in eval mode."""
    from ..engine.checkpoint import read_tensors

    header = _prior_header(path)
    architecture = _checked_info(header)["architecture"]
    with torch.device("meta"):  # the shapes alone: nothing allocated before the file has passed its checks
        expected = {k: tuple(v.shape) for k, v in AffinePrior(architecture["patch_size"],
                                                              tuple(architecture["hidden_dims"])).state_dict().items()}
    found = {k: e.shape for k, e in header.tensors.items()}
    if found != expected or not all(e.is_floating for e in header.tensors.values()):
        raise AffinePriorError(f"affine prior {header.path} does not match its stored architecture (its tensors "
                               f"differ from what {architecture} needs); retrain it with `vivim-core "
                               f"train-affine-prior --out {header.path}`")
    state = read_tensors(header, "affine prior", AffinePriorError)
    prior = AffinePrior(architecture["patch_size"], tuple(architecture["hidden_dims"]))
    prior.load_state_dict({k: v.float() for k, v in state.items()})
    prior.requires_grad_(False)
    return prior.to(device).eval()
