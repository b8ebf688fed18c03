"""What a safetensors file says about itself, read without torch and without trusting it.

A safetensors file is 8 bytes of header length (little-endian), a JSON header, then the tensors' raw bytes. A
checkpoint comes from anywhere (a colleague, another site, a download), so this module, the one reader of such
headers, checks everything before anyone uses it:

    header = read_safetensors_header(path, "checkpoint")  # .tensors {name: TensorEntry}, .metadata {str: str}
    info = read_checkpoint_info(path)     # {'config': ModelConfig, 'provenance': dict, 'vivim_version', ...}
    is_vivim_checkpoint(path)             # True for a valid Vivim checkpoint; False, never an error, otherwise
    value = loads_json(text, "what")      # JSON with a nesting limit and without NaN / Infinity

Checks: a regular file (a FIFO or a device would block or stream forever), a header of at most
MAX_HEADER_BYTES, JSON nested at most MAX_JSON_DEPTH levels, at most MAX_TENSORS entries, each with a known
dtype, a shape of at most MAX_TENSOR_DIMS non-negative integers, and data offsets inside the file that match
its byte size, no two entries overlapping. A checkpoint's model config must pass `ModelConfig`'s schema (types,
ranges, the parameters and memory it implies) and the provenance values the code reads are bounded
(`PROVENANCE_RULES`). Every failure is a `CheckpointError` naming the file. Nothing here imports torch or
unpickles anything, so the GUI may call it on any thread.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .config import ConfigError, ModelConfig
from .errors import VivimError
from .file_safety import UnsafePathError, open_regular

FORMAT_NAME = "vivim-checkpoint"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 16 * 2**20  # a vivim-b3 header is about 100 kB
MAX_JSON_DEPTH = 16  # a header needs 3 levels, a model config 2
MAX_TENSORS = 100_000
MAX_TENSOR_DIMS = 8
MAX_DIMENSION = 2**40
MAX_TRAIN_SIDE = 2048
MAX_CLIP_LENGTH = 128
MAX_TEXT = 200  # short texts shown to the user (kind, versions)
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
FLOAT_DTYPES = frozenset({"F64", "F32", "F16", "BF16"})
_PICKLE_HINT = (
    "Vivim checkpoints are .safetensors files; Vivim never unpickles .pt/.pth files because unpickling can run "
    "arbitrary code. Weights saved by the official Vivim code convert with `vivim-core import-official FILE --out "
    "MODEL.safetensors` (PyTorch's weights-only reader); for other files you trust, use safetensors.torch.save_file."
)


class CheckpointError(VivimError, ValueError):
    """A file that cannot be loaded as a Vivim checkpoint; the message names the file and the problem."""


@dataclass(frozen=True)
class TensorEntry:
    """One tensor as the header describes it; `begin`/`end` are byte offsets into the data section."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin

    @property
    def is_floating(self) -> bool:
        return self.dtype in FLOAT_DTYPES


@dataclass(frozen=True)
class SafetensorsHeader:
    """A checked header: every entry lies inside the file (`data_start + entry.end <= file_size`)."""

    path: Path
    file_size: int
    data_start: int  # 8 + the header's length
    tensors: dict[str, TensorEntry]
    metadata: dict[str, str]


# JSON ----------------------------------------------------------------------------------------------------------
def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _infinity(name: str) -> float:
    if name == "NaN":
        raise ValueError("NaN is not a JSON value")
    return float(name)


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """Nesting depth of decoded JSON (a scalar 0, [] 1, [[]] 2), counted without recursion; stops counting
    once past `limit`."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if deepest > limit:
                break
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def loads_json(text: str | bytes, what: str, max_depth: int = MAX_JSON_DEPTH,
               error: type[VivimError] = CheckpointError, allow_infinity: bool = False) -> Any:
    """Decode JSON found in a file: `error` (naming `what`) for invalid UTF-8 or JSON, NaN / Infinity (unless
    `allow_infinity`: then +-Infinity, never NaN), integers of thousands of digits, or nesting deeper than
    `max_depth`."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        if not isinstance(text, str):
            raise ValueError(f"{type(text).__name__} instead of text")
        value = json.loads(text, parse_constant=_infinity if allow_infinity else _refuse_constant)
    except RecursionError:
        raise error(f"{what} is nested more than {max_depth} levels deep; it was altered or is not ours") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many digits
        raise error(f"{what} is not valid JSON ({str(exc)[:200]})") from None
    depth = json_depth(value, max_depth)
    if depth > max_depth:
        raise error(f"{what} is nested more than {max_depth} levels deep; it was altered or is not ours")
    return value


# the safetensors header ------------------------------------------------------------------------------------
def read_safetensors_header(path: str | Path, what: str = "checkpoint",
                            error: type[VivimError] = CheckpointError) -> SafetensorsHeader:
    """The checked header of the safetensors file at `path` (see the module docstring); `error` naming
    `what` and the file for anything else: a missing file, a folder, a FIFO, a pickle, a truncated file..."""
    path = Path(path)
    try:
        with open_regular(path, what) as f:
            size = f.seek(0, 2)
            f.seek(0)
            head = f.read(8)
            if len(head) < 8:
                raise error(f"{what} {path} is {size} bytes long: empty or truncated, not a checkpoint")
            if head.startswith(b"PK\x03\x04"):  # torch.save's zip container
                raise error(f"{path} looks like a PyTorch pickle (.pt/.pth), not a safetensors checkpoint. "
                            + _PICKLE_HINT)
            (length,) = struct.unpack("<Q", head)
            raw = f.read(length) if 2 <= length <= min(size - 8, MAX_HEADER_BYTES) else None
    except UnsafePathError as exc:
        message = str(exc)
        if message.endswith(": not found"):
            message = f"{what} {path} does not exist"
        elif message.endswith("is a folder; give a file"):
            message = f"{what} {path} is a folder; give the path of a .safetensors file"
        raise error(message) from None
    if raw is None and 8 + length <= size:
        raise error(f"{what} {path}: its safetensors header is {length:,} bytes, more than the "
                    f"{MAX_HEADER_BYTES:,} accepted; the file was altered or is not a checkpoint")
    not_safetensors = f"{path} is not a safetensors checkpoint"
    header: Any = _UNREAD
    if raw is not None:
        try:
            header = loads_json(raw, f"{not_safetensors}: its header", error=error)
        except VivimError:
            if not _looks_like_pickle(head):
                raise
    if header is _UNREAD:
        # Only now guess at a pickle: a safetensors header length can start with the byte 0x80 too.
        if _looks_like_pickle(head):
            raise error(f"{path} looks like a PyTorch pickle (.pt/.pth), not a safetensors checkpoint. "
                        + _PICKLE_HINT)
        raise error(f"{not_safetensors} (no valid safetensors header), or it is truncated. " + _PICKLE_HINT)
    if not isinstance(header, dict):
        raise error(f"{not_safetensors}: its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise error(f"{what} {path}: its __metadata__ must map names to strings (safetensors format); the file "
                    f"was altered or written by another program")
    if len(header) > MAX_TENSORS:
        raise error(f"{what} {path}: {len(header):,} tensors, more than the {MAX_TENSORS:,} accepted")

    def fail(message: str) -> None:
        raise error(f"{what} {path}: {message}; the file was altered or written by another program")

    tensors = {name: _entry(name, value, fail) for name, value in header.items()}
    data_size = size - 8 - length
    data_end = max((t.end for t in tensors.values()), default=0)
    if data_end > data_size:
        raise error(f"{what} {path} is truncated: {size} bytes on disk, {8 + length + data_end} expected. Copy or "
                    f"download it again.")
    previous = None
    for entry in sorted((t for t in tensors.values() if t.nbytes), key=lambda t: t.begin):
        if previous is not None and entry.begin < previous.end:
            fail(f"tensors {previous.name!r} and {entry.name!r} overlap in the file")
        previous = entry
    return SafetensorsHeader(path, size, 8 + length, tensors, dict(metadata))


_UNREAD = object()


def _looks_like_pickle(head: bytes) -> bool:
    return head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")


def _entry(name: str, raw: Any, fail: Callable[[str], None]) -> TensorEntry:
    if not isinstance(raw, dict):
        fail(f"tensor {name[:100]!r}: its entry is not a JSON object")
    missing = sorted({"dtype", "shape", "data_offsets"} - set(raw))
    unexpected = sorted(set(raw) - {"dtype", "shape", "data_offsets"})
    if missing or unexpected:
        fail(f"tensor {name[:100]!r}: " + ", ".join(filter(None, [missing and f"missing {missing}",
                                                                   unexpected and f"unexpected {unexpected}"]))
             + " field(s); an entry has dtype, shape and data_offsets")
    dtype, shape, offsets = raw["dtype"], raw["shape"], raw["data_offsets"]
    if dtype not in DTYPE_BYTES:
        fail(f"tensor {name[:100]!r}: dtype {str(dtype)[:20]!r} is not one of {', '.join(DTYPE_BYTES)}")
    if not isinstance(shape, list) or len(shape) > MAX_TENSOR_DIMS \
            or not all(_is_int(d) and 0 <= d <= MAX_DIMENSION for d in shape):
        fail(f"tensor {name[:100]!r}: shape {str(shape)[:80]} is not a list of at most {MAX_TENSOR_DIMS} "
             f"non-negative integers")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets) \
            or not 0 <= offsets[0] <= offsets[1]:
        fail(f"tensor {name[:100]!r}: data_offsets {str(offsets)[:80]} must be [begin, end] with 0 <= begin <= end")
    needed = math.prod(shape) * DTYPE_BYTES[dtype]
    if offsets[1] - offsets[0] != needed:
        fail(f"tensor {name[:100]!r}: data_offsets {offsets} hold {offsets[1] - offsets[0]:,} bytes, but a {dtype} "
             f"tensor of shape {shape} takes {needed:,}")
    return TensorEntry(name, dtype, tuple(shape), offsets[0], offsets[1])


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# a Vivim checkpoint's metadata ----------------------------------------------------------------------------------
def _train_size(value: Any) -> str | None:
    if not (isinstance(value, list) and len(value) == 2 and all(_is_int(v) for v in value)
            and all(32 <= v <= MAX_TRAIN_SIDE and v % 32 == 0 for v in value)):
        return f"must be [height, width], multiples of 32 from 32 to {MAX_TRAIN_SIDE}"
    return None


# provenance key -> a check that returns what is wrong (None when the value is fine). Only the keys the code
# reads are checked; None or a missing key means "not recorded".
PROVENANCE_RULES: dict[str, Callable[[Any], str | None]] = {
    "train_size": _train_size,
    "clip_length": lambda v: None if _is_int(v) and 1 <= v <= MAX_CLIP_LENGTH
    else f"must be an integer from 1 to {MAX_CLIP_LENGTH}",
    "step": lambda v: None if _is_int(v) and 0 <= v <= 10**12 else "must be a non-negative integer",
    "epoch": lambda v: None if _is_int(v) and 0 <= v <= 10**12 else "must be a non-negative integer",
    "val_dice": lambda v: None if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1
    else "must be a number from 0 to 1",
    "kind": lambda v: None if isinstance(v, str) and len(v) <= MAX_TEXT and v.isprintable()
    else f"must be a short text (at most {MAX_TEXT} printable characters)",
}


def _short_text(value: str) -> str:
    return value if len(value) <= MAX_TEXT and value.isprintable() else "?"


def checkpoint_info_from_header(header: SafetensorsHeader) -> dict[str, Any]:
    """The Vivim metadata of a checked header, validated: {'config': ModelConfig, 'provenance': dict,
    'vivim_version': str, 'torch_version': str}. CheckpointError naming the file otherwise."""
    path, metadata = header.path, header.metadata
    if metadata.get("format") != FORMAT_NAME:
        raise CheckpointError(
            f"{path} is a safetensors file but not a Vivim checkpoint (no '{FORMAT_NAME}' metadata). "
            "A Hugging Face SegFormer checkpoint is used with `vivim-core train --init-segformer PATH`."
        )
    version = metadata.get("format_version", "")
    if not (version.isdigit() and len(version) < 6 and 1 <= int(version) <= FORMAT_VERSION):
        raise CheckpointError(f"checkpoint {path} has format version {version[:20]!r}; this vivim-core reads "
                              f"version {FORMAT_VERSION}. Update vivim-core to load it (or, if the field is "
                              f"missing or garbled, the file was altered).")
    if "model_config" not in metadata:
        raise CheckpointError(f"checkpoint {path} has no model config in its metadata; the file was altered or "
                              f"written by another program")
    config_data = loads_json(metadata["model_config"], f"checkpoint {path}: its model config")
    if not isinstance(config_data, dict):
        raise CheckpointError(f"checkpoint {path}: its model config is not a JSON object")
    try:
        config = ModelConfig.from_dict(config_data)
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path} has a model config this vivim-core refuses: {exc}") from None
    provenance = loads_json(metadata.get("provenance") or "{}", f"checkpoint {path}: its provenance")
    if not isinstance(provenance, dict):
        raise CheckpointError(f"checkpoint {path}: its provenance is not a JSON object")
    for key, rule in PROVENANCE_RULES.items():
        value = provenance.get(key)
        problem = None if value is None else rule(value)
        if problem:
            raise CheckpointError(f"checkpoint {path}: provenance {key} {str(value)[:60]!r} {problem}; the file "
                                  f"was altered or written by another program: use a checkpoint written by vivim-core")
    return {
        "config": config,
        "provenance": provenance,
        "vivim_version": _short_text(metadata.get("vivim_version", "?")),
        "torch_version": _short_text(metadata.get("torch_version", "?")),
    }


def read_checkpoint_info(path: str | Path) -> dict[str, Any]:
    """The validated metadata of the Vivim checkpoint at `path` (see `checkpoint_info_from_header`)."""
    return checkpoint_info_from_header(read_safetensors_header(path, "checkpoint"))


def is_vivim_checkpoint(path: str | Path) -> bool:
    """Whether `path` is a Vivim checkpoint whose header, config and provenance pass every check (its weights
    are checked when it loads). False, never an error, for anything else."""
    try:
        read_checkpoint_info(path)
    except VivimError:
        return False
    return True
