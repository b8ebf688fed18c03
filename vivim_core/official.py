"""Weights trained with the official Vivim code, imported as a Vivim checkpoint that computes the same function.

    report = import_official("ultra-epoch.ckpt", "official-b3.safetensors", variant="vivim-b3")
    print(report.summary())
    model = load_model("official-b3.safetensors")      # the official model's outputs (see README)

The official code saves a PyTorch state dict: a `.pth` (`torch.save(model.state_dict())`) or a PyTorch
Lightning `.ckpt` whose `state_dict` holds the network under `model.`. Both are pickles. They are read with
PyTorch's weights-only unpickler, which rebuilds tensors and plain containers and refuses every other global
(so `os.system` or a custom class in the file is refused, never called); the few harmless objects a Lightning
checkpoint carries besides the weights (its hyper-parameters as an `argparse.Namespace` or `AttributeDict`)
are rebuilt as inert dictionaries and dropped.

Name mapping (official -> ours; `{i}` stage, `{j}` block). The encoder is Hugging Face's SegFormer encoder
under `encoder.downsample_layers.`, the decoder its decode head:

    encoder.downsample_layers.patch_embeddings.{i}.X   stages.{i}.patch_embed.X          X: proj, layer_norm
    encoder.downsample_layers.block.{i}.{j}.X          stages.{i}.blocks.{j}.X           X: layer_norm_1, _2
    ....block.{i}.{j}.attention.self.X                 stages.{i}.blocks.{j}.attention.X X: query, key, value, sr
    ....block.{i}.{j}.attention.self.layer_norm        stages.{i}.blocks.{j}.attention.sr_norm
    ....block.{i}.{j}.attention.output.dense           stages.{i}.blocks.{j}.attention.proj
    ....block.{i}.{j}.mlp.X, mlp.dwconv.dwconv         stages.{i}.blocks.{j}.mlp.X, mlp.dwconv  X: dense1, dense2
    encoder.downsample_layers.layer_norm.{i}           stages.{i}.layer_norm (never applied)
    encoder.stages.{i}.{j}.0.X                         stages.{i}.temporal_blocks.{j}.X  X: norm1, norm2, mamba.*
    encoder.stages.{i}.{j}.0.mlp.fc1, fc2              stages.{i}.temporal_blocks.{j}.dsf.dense1, dense2
    encoder.stages.{i}.{j}.0.mlp.dwconv.dwconv         stages.{i}.temporal_blocks.{j}.dsf.dwconv
    decoder.linear_c.{i}.proj                          decoder.linear_c.{i}
    decoder.linear_fuse, decoder.batch_norm            the same
    out                                                decoder.classifier
    edgeocr_cls_head                                   boundary_head.layers.0
    decoder.classifier (SegFormer's ADE20K head)       dropped: the official forward pass never uses it

The imported model's config sets the switches that reproduce the official forward pass: `stage_norm="none"`
and `boundary_head="conv1x1"`. A checkpoint trained without the edge head (`with_edge=False`, the official
default) gets a zero boundary head: its boundary output is a constant 0.5 and carries no information.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import VARIANTS, ConfigError, ModelConfig, get_config
from .errors import VivimError

OFFICIAL_SWITCHES = {"stage_norm": "none", "boundary_head": "conv1x1"}
OFFICIAL_CLIP_LENGTH = 5  # the official Mamba's spatial scan is built for 5 frames (`nframes=5`)
OFFICIAL_SIZE = (256, 256)  # the official training and test resize
_ANCHOR = "encoder.downsample_layers.patch_embeddings.0.proj.weight"  # locates the network inside a file
_DROPPED = "decoder.classifier."  # SegFormer's ADE20K classifier: loaded by the official code, never used
_EDGE_HEAD = "edgeocr_cls_head."
# Objects a Lightning checkpoint holds besides the weights, harmless as plain data: rebuilt as _InertDict.
_INERT_GLOBALS = (
    "argparse.Namespace",
    "lightning_fabric.utilities.data.AttributeDict",
    "lightning.fabric.utilities.data.AttributeDict",
    "pytorch_lightning.utilities.parsing.AttributeDict",
)

_E = "encoder.downsample_layers."
# (official prefix, our prefix); {i} and {j} are indices. The part after the prefix is the same on both sides.
_RULES = [
    (_E + "patch_embeddings.{i}.proj.", "stages.{i}.patch_embed.proj."),
    (_E + "patch_embeddings.{i}.layer_norm.", "stages.{i}.patch_embed.layer_norm."),
    (_E + "block.{i}.{j}.layer_norm_1.", "stages.{i}.blocks.{j}.layer_norm_1."),
    (_E + "block.{i}.{j}.layer_norm_2.", "stages.{i}.blocks.{j}.layer_norm_2."),
    (_E + "block.{i}.{j}.attention.self.query.", "stages.{i}.blocks.{j}.attention.query."),
    (_E + "block.{i}.{j}.attention.self.key.", "stages.{i}.blocks.{j}.attention.key."),
    (_E + "block.{i}.{j}.attention.self.value.", "stages.{i}.blocks.{j}.attention.value."),
    (_E + "block.{i}.{j}.attention.self.sr.", "stages.{i}.blocks.{j}.attention.sr."),
    (_E + "block.{i}.{j}.attention.self.layer_norm.", "stages.{i}.blocks.{j}.attention.sr_norm."),
    (_E + "block.{i}.{j}.attention.output.dense.", "stages.{i}.blocks.{j}.attention.proj."),
    (_E + "block.{i}.{j}.mlp.dense1.", "stages.{i}.blocks.{j}.mlp.dense1."),
    (_E + "block.{i}.{j}.mlp.dwconv.dwconv.", "stages.{i}.blocks.{j}.mlp.dwconv."),
    (_E + "block.{i}.{j}.mlp.dense2.", "stages.{i}.blocks.{j}.mlp.dense2."),
    (_E + "layer_norm.{i}.", "stages.{i}.layer_norm."),
    ("encoder.stages.{i}.{j}.0.norm1.", "stages.{i}.temporal_blocks.{j}.norm1."),
    ("encoder.stages.{i}.{j}.0.mamba.", "stages.{i}.temporal_blocks.{j}.mamba."),
    ("encoder.stages.{i}.{j}.0.norm2.", "stages.{i}.temporal_blocks.{j}.norm2."),
    ("encoder.stages.{i}.{j}.0.mlp.fc1.", "stages.{i}.temporal_blocks.{j}.dsf.dense1."),
    ("encoder.stages.{i}.{j}.0.mlp.dwconv.dwconv.", "stages.{i}.temporal_blocks.{j}.dsf.dwconv."),
    ("encoder.stages.{i}.{j}.0.mlp.fc2.", "stages.{i}.temporal_blocks.{j}.dsf.dense2."),
    ("decoder.linear_c.{i}.proj.", "decoder.linear_c.{i}."),
    ("decoder.linear_fuse.", "decoder.linear_fuse."),
    ("decoder.batch_norm.", "decoder.batch_norm."),
    ("out.", "decoder.classifier."),
    (_EDGE_HEAD, "boundary_head.layers.0."),
]


class OfficialImportError(VivimError, ValueError):
    """An official checkpoint that cannot be imported; the message names the file, the problem and the fix."""


def _compile(template: str) -> re.Pattern:
    pattern = re.escape(template).replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{j\}", r"(?P<j>\d+)")
    return re.compile("^" + pattern)


_FORWARD = [(_compile(official), ours) for official, ours in _RULES]
_BACKWARD = [(_compile(ours), official) for official, ours in _RULES]


def _apply(rules: list[tuple[re.Pattern, str]], name: str) -> str | None:
    for pattern, template in rules:
        match = pattern.match(name)
        if match:
            return template.format(**match.groupdict()) + name[match.end():]
    return None


def official_to_ours(name: str) -> str | None:
    """Our name for an official parameter name; None for one that has no counterpart here."""
    return None if name.startswith(_DROPPED) else _apply(_FORWARD, name)


def ours_to_official(name: str) -> str | None:
    """The official name of one of our parameters; None for one the official model lacks (prompt layers)."""
    return _apply(_BACKWARD, name)


def to_official_state_dict(model) -> dict:
    """A Vivim's state dict under the official code's names (the import run backwards; for tests and export).

    The model should carry `OFFICIAL_SWITCHES`, or the official code computes something else with the weights."""
    state = {}
    for name, tensor in model.state_dict().items():
        official = ours_to_official(name)
        if official is None:
            raise OfficialImportError(f"{name} has no counterpart in the official model")
        state[official] = tensor
    return state


def official_config(variant: str | ModelConfig = "vivim-b3") -> ModelConfig:
    """The variant's config with the switches that reproduce the official forward pass."""
    return get_config(variant, **OFFICIAL_SWITCHES)


# ---- reading a pickled state dict without running code ----------------------------------------------------------


class _InertDict(dict):
    """Stands in for a harmless pickled object (hyper-parameters); keeps its fields as plain data."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.update(state)


def _refuse_globals(path: Path, names: list[str]) -> OfficialImportError:
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return OfficialImportError(
        f"{path} pickles {shown}, which is not a tensor or plain data; Vivim never runs code from a checkpoint, so it "
        f"refuses this file. If you trust it, save only its weights in a Python session you trust "
        f"(torch.save(checkpoint['state_dict'], 'weights.pth')) and import that file")


def read_pickled_state(path: str | os.PathLike) -> Any:
    """Whatever `torch.save` stored in `path`, read with the weights-only unpickler (tensors, containers,
    numbers, strings; hyper-parameter objects become plain dicts). Raises OfficialImportError otherwise."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise OfficialImportError(f"{path}: file not found" if not path.exists() else f"{path} is not a file")
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8:
        raise OfficialImportError(f"{path} is {path.stat().st_size} bytes long: empty or truncated")
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        hint = (" It looks like a safetensors file: a Vivim checkpoint needs no import." if head[4:8] == b"\0\0\0\0"
                else "")
        raise OfficialImportError(f"{path} is not a PyTorch .pth/.ckpt file (written by torch.save).{hint}")
    allowed = [(_InertDict, name) for name in _INERT_GLOBALS]
    if head.startswith(b"PK\x03\x04"):  # the zip format lists its globals without unpickling anything
        try:
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except Exception as exc:  # a damaged zip
            raise OfficialImportError(f"{path} could not be read as a PyTorch file ({exc}); copy it again") from exc
        refused = sorted(set(unsafe) - set(_INERT_GLOBALS))
        if refused:
            raise _refuse_globals(path, refused)
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # a refused global (UnpicklingError), or a truncated or corrupt file (many types)
        names = re.findall(r"GLOBAL\s+([\w.]+)", str(exc))
        if names:  # the legacy format, whose globals are only met while reading
            raise _refuse_globals(path, names) from None
        first_line = (str(exc).splitlines() or [""])[0][:300]
        raise OfficialImportError(f"{path} could not be read as a PyTorch file ({type(exc).__name__}: "
                                  f"{first_line}); copy it again") from None


def _network_state(path: Path, loaded: Any) -> tuple[dict, list[str]]:
    """(the official network's tensors under their official names, names outside the network that were left
    out) from what the file holds: a state dict, or a Lightning checkpoint with 'state_dict'."""
    import torch

    state = loaded
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        state = loaded["state_dict"]
    if not isinstance(state, dict) or not state:
        raise OfficialImportError(f"{path} holds no state dict (a mapping of names to tensors), nor a Lightning "
                                  f"checkpoint with a 'state_dict'")
    not_tensors = sorted(str(k) for k, v in state.items() if not isinstance(v, torch.Tensor))
    if not_tensors:
        raise OfficialImportError(f"{path}: the state dict holds {len(not_tensors)} entries that are not tensors, "
                                  f"e.g. {not_tensors[:3]}")
    prefixes = [k[: -len(_ANCHOR)] for k in state if isinstance(k, str) and k.endswith(_ANCHOR)]
    if len(prefixes) != 1:
        ours = any(str(k).startswith("stages.0.patch_embed.") for k in state)
        hint = (" Its names are Vivim's own: save it with vivim_core.engine.checkpoint.save_checkpoint instead."
                if ours else f" Expected names like {_ANCHOR} (from the official modeling/vivim.py).")
        found = "several copies of" if prefixes else "no"
        raise OfficialImportError(f"{path} holds {found} official Vivim network.{hint}")
    prefix = prefixes[0]
    network = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    outside = sorted(k for k in state if not k.startswith(prefix))
    return network, outside


# ---- the import -----------------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What `import_official` did."""

    source: Path
    output: Path
    config: ModelConfig
    official_names: int = 0  # tensors of the official network read
    mapped: int = 0
    dropped: list[str] = field(default_factory=list)  # official names with no counterpart (ADE classifier)
    outside: list[str] = field(default_factory=list)  # names outside the network in a Lightning checkpoint
    boundary_head: str = "imported"  # "imported" | "absent (zeros)"

    def summary(self) -> str:
        lines = [f"imported {self.mapped} of {self.official_names} tensors from {self.source} into {self.output} "
                 f"({self.config.variant}, stage_norm={self.config.stage_norm}, "
                 f"boundary_head={self.config.boundary_head})"]
        if self.dropped:
            lines.append(f"  left out {len(self.dropped)} unused official tensor(s): {', '.join(self.dropped)}")
        if self.outside:
            lines.append(f"  left out {len(self.outside)} tensor(s) outside the network (e.g. the loss's): "
                         f"{', '.join(self.outside[:3])}{' ...' if len(self.outside) > 3 else ''}")
        if self.boundary_head != "imported":
            lines.append("  the file has no edge head (trained with with_edge=False): the boundary output is a "
                         "constant 0.5")
        lines.append(f"  to reproduce the official inference: vivim-core predict --checkpoint {self.output} "
                     f"--protocol official --clip-length {OFFICIAL_CLIP_LENGTH} ...")
        return "\n".join(lines)


def _show(names: list[str], limit: int = 5) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _fitting_variants(shapes: dict[str, tuple]) -> list[str]:
    """Variants whose official-layout model has exactly these tensor shapes."""
    import torch

    from .model import Vivim

    fits = []
    for name in VARIANTS:
        with torch.device("meta"):
            expected = Vivim(official_config(name)).state_dict()
        if {k: tuple(v.shape) for k, v in expected.items()} == shapes:
            fits.append(name)
    return fits


def map_official_state(path: Path, network: dict, config: ModelConfig) -> tuple[dict, list[str], str]:
    """(our state dict, dropped official names, boundary head status) for a model of `config`; raises
    OfficialImportError listing unknown names, missing names and wrong shapes."""
    import torch

    from .model import Vivim

    with torch.device("meta"):
        expected = Vivim(config).state_dict()
    state, dropped, unknown = {}, [], []
    for name, tensor in network.items():
        ours = official_to_ours(name)
        if ours is None and name.startswith(_DROPPED):
            dropped.append(name)
        elif ours is None or ours not in expected:
            unknown.append(name)
        else:
            state[ours] = tensor
    boundary = "imported"
    head = [k for k in expected if k.startswith("boundary_head.")]
    if not any(k in state for k in head):  # trained with with_edge=False: no edge head at all
        boundary = "absent (zeros)"
        state.update({k: torch.zeros(expected[k].shape, dtype=expected[k].dtype) for k in head})
    missing = sorted(ours_to_official(k) or k for k in expected if k not in state)
    wrong = [f"{ours_to_official(k)}: {tuple(v.shape)} in the file, {tuple(expected[k].shape)} in {config.variant}"
             for k, v in state.items() if tuple(v.shape) != tuple(expected[k].shape)]
    problems = []
    if unknown:
        problems.append(f"{len(unknown)} name(s) this import cannot map: {_show(sorted(unknown))}")
    if missing:
        problems.append(f"{len(missing)} name(s) missing: {_show(missing)}")
    if wrong:
        problems.append(f"{len(wrong)} tensor(s) of the wrong shape: {_show(wrong, 3)}")
    if problems:
        hint = ""
        if (missing or wrong) and not unknown:
            shapes = {official_to_ours(k): tuple(v.shape) for k, v in network.items() if official_to_ours(k)}
            if boundary != "imported":
                shapes.update({k: tuple(expected[k].shape) for k in head})
            fits = [v for v in _fitting_variants(shapes) if v != config.variant]
            hint = f" It fits --variant {' or '.join(fits)}." if fits else ""
        raise OfficialImportError(f"{path} does not fit the official {config.variant} model: " + "; ".join(problems)
                                  + f".{hint} Import a state dict saved by the official code's Vivim class.")
    return state, sorted(dropped), boundary


def import_official(source: str | os.PathLike, output: str | os.PathLike,
                    variant: str = "vivim-b3") -> ImportReport:
    """Read an official `.pth`/`.ckpt`, map its names and write a Vivim checkpoint computing the official function.

    Raises OfficialImportError (pickled code objects, not a state dict, unmappable / missing names, wrong shapes,
    non-finite weights), each time naming the file.
    """
    import torch

    from .engine.checkpoint import checkpoint_sha256, save_checkpoint
    from .model import Vivim

    source, output = Path(source), Path(output)
    if output.suffix != ".safetensors":
        raise OfficialImportError(f"--out {output}: give a .safetensors path (Vivim checkpoints are safetensors)")
    if output.exists() and output.resolve() == source.resolve():
        raise OfficialImportError(f"--out {output} is the input file; choose another path")
    try:
        config = official_config(variant)
    except ConfigError as exc:
        raise OfficialImportError(str(exc)) from exc
    network, outside = _network_state(source, read_pickled_state(source))
    state, dropped, boundary = map_official_state(source, network, config)
    bad = sorted(ours_to_official(k) for k, v in state.items()
                 if v.is_floating_point() and not bool(torch.isfinite(v).all()))
    if bad:
        raise OfficialImportError(f"{source} holds NaN or infinite weights in {len(bad)} tensor(s), e.g. {bad[:3]}; "
                                  f"it comes from a diverged training run")
    model = Vivim(config)
    model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in state.items()})
    provenance = {"kind": "import-official", "source": str(source.resolve()),
                  "source_sha256": checkpoint_sha256(source), "boundary_head": boundary,
                  "clip_length": OFFICIAL_CLIP_LENGTH, "train_size": list(OFFICIAL_SIZE)}
    save_checkpoint(model, output, provenance)
    return ImportReport(source, output, config, official_names=len(network), mapped=len(network) - len(dropped),
                        dropped=dropped, outside=outside, boundary_head=boundary)
