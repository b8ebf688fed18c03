"""The workspace's on-disk format: names, JSON schemas and their validation (no writing here).

    <workspace>/
      workspace.json                       format, version, source identity and location (written at creation;
                                           rewritten when the video moved or its identity was upgraded)
      state.json                           current frame, proposal threshold, last checkpoint (small, rewritten)
      frames/NNNNNN.json                   one record per frame that has any content (0-based index, 6+ digits):
                                           status, provenance, and a record per lesion (`status.LesionRecord`)
      masks/NNNNNN-<sha16>.png             the frame's label map, named by content hash: a 1-bit PNG while the
                                           frame holds lesion 1 only, else 8-bit greyscale whose values are the
                                           lesion ids (0 background)
      probabilities/NNNNNN-<sha16>.png     the frame's probability map, 8-bit q = min(floor(256 p), 255)
      models/adapted-NNNN.safetensors      the model adapted to this video while the expert corrected it
                                           (the newest two; state.json names the current one)
      .lock                                held (flock) by the process that has the workspace open

A frame record names its mask and probability files; a save writes the new (content-named) files first, then
replaces the record (temp + fsync + rename), then deletes the files it no longer names. So at any instant the
record on disk names complete files: a crash loses only the edit whose record had not been renamed yet.
Files that no record names (left by such a crash) are removed on the next open.

Versions: 1 identified the video by sampled content; 2 hashes all of it; 3 holds lesion label maps. A version 2
record has no "lesions": its mask (1-bit) is lesion 1 with the frame's status and origin, and its clicks drew
lesion 1 (`FrameRecord.from_json`); so older workspaces open without loss, and are marked version 3 when opened
for writing (an older Vivim Studio then refuses them rather than misreading 8-bit label maps). Records are
rewritten in the new form as their frames change.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import codec
from .exceptions import WorkspaceError
from .sources import SourceIdentity
from .status import FrameRecord

FORMAT = "vivim-studio-workspace"
FORMAT_VERSION = 3  # 3: label maps of lesions (see the module docstring for 1 and 2)
READABLE_VERSIONS = (1, 2, 3)
WORKSPACE_FILE, STATE_FILE = "workspace.json", "state.json"
FRAMES_DIR, MASKS_DIR, PROBS_DIR, MODELS_DIR = "frames", "masks", "probabilities", "models"
MODEL_NAME = re.compile(r"^adapted-(\d{4,9})\.safetensors$")
RECORD_NAME = re.compile(r"^(\d{6,})\.json$")
BLOB_NAME = re.compile(r"^(\d{6,})-([0-9a-f]{16})\.png$")
FIX_HINT = ("fix or remove that file by hand (removing a frame's record forgets only that frame's mask), or "
            "open the video with a new workspace folder")


def record_name(index: int) -> str:
    return f"{index:06d}.json"


def model_name(number: int) -> str:
    return f"adapted-{number:04d}.safetensors"


def blob_name(index: int, digest: str) -> str:
    return f"{index:06d}-{digest[:16]}.png"


@dataclass
class StoredFrame:
    """A frame record read back: its record, its mask bytes (None: empty) and probability file name."""

    record: FrameRecord
    mask: bytes | None
    mask_file: str | None
    probability_file: str | None


def read_json(path: Path) -> Any:
    """Parsed JSON of `path`, or WorkspaceError saying what is wrong with it."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise WorkspaceError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise WorkspaceError(f"{path}: not a text (UTF-8 JSON) file; {FIX_HINT}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkspaceError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                             f"{FIX_HINT}") from None


def dump_json(data: Any) -> bytes:
    return (json.dumps(data, indent=1, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")


def parse_workspace_file(folder: Path) -> dict[str, Any]:
    """Validated content of workspace.json: {"identity": SourceIdentity, "source": dict, ...}."""
    path = folder / WORKSPACE_FILE
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise WorkspaceError(f"{path}: not a Vivim Studio workspace file (its \"format\" is not {FORMAT!r}); "
                             f"choose another workspace folder")
    version = data.get("format_version")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise WorkspaceError(f"{path}: workspace format version {version!r}; this Vivim Studio reads versions "
                             f"{', '.join(map(str, READABLE_VERSIONS))}"
                             + ("; update Vivim Studio to open it" if newer else ""))
    source = data.get("source")
    try:
        if not isinstance(source, dict):
            raise TypeError("\"source\" must be a JSON object")
        identity = SourceIdentity.from_json(source.get("identity"))
        fps = source.get("fps")
        if fps is not None and (not isinstance(fps, (int, float)) or isinstance(fps, bool) or fps <= 0):
            raise ValueError(f"fps must be a positive number or null, found {fps!r}")
        for key in ("path", "relative_path", "name"):
            if source.get(key) is not None and not isinstance(source.get(key), str):
                raise TypeError(f"source {key} must be a string")
        previous = source.get("previous_identities", [])
        if not isinstance(previous, list) or not all(isinstance(d, str) and re.fullmatch(r"[0-9a-f]{64}", d)
                                                     for d in previous):
            raise ValueError("previous_identities must be a list of 64-digit SHA-256 digests")
    except (KeyError, TypeError, ValueError) as exc:
        raise WorkspaceError(f"{path}: the source description is invalid ({exc}); this file identifies the "
                             f"video, restore it from a backup or open the video with a new workspace") from None
    return {"identity": identity, "source": source, "previous_identities": set(previous), "raw": data,
            "format_version": version}


def parse_state(folder: Path, num_frames: int) -> dict[str, Any]:
    """Validated state.json (defaults when absent)."""
    path = folder / STATE_FILE
    state = {"current_frame": 0, "proposal_threshold": 0.5, "checkpoint": None, "model": None}
    if not path.exists():
        return state
    data = read_json(path)
    if not isinstance(data, dict):
        raise WorkspaceError(f"{path}: expected a JSON object; {FIX_HINT}")
    current, threshold, checkpoint = (data.get("current_frame", 0), data.get("proposal_threshold", 0.5),
                                      data.get("checkpoint"))
    if not isinstance(current, int) or isinstance(current, bool) or not 0 <= current < num_frames:
        raise WorkspaceError(f"{path}: current_frame must be a frame index 0..{num_frames - 1}, found "
                             f"{current!r}; {FIX_HINT}")
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not 0 < threshold < 1:
        raise WorkspaceError(f"{path}: proposal_threshold must be a number in (0, 1), found {threshold!r}; "
                             f"{FIX_HINT}")
    if checkpoint is not None and not (isinstance(checkpoint, dict)
                                       and isinstance(checkpoint.get("sha256"), str)):
        raise WorkspaceError(f"{path}: checkpoint must be null or an object with a \"sha256\" string; {FIX_HINT}")
    model = data.get("model")
    if model is not None and not (isinstance(model, dict) and isinstance(model.get("file"), str)
                                  and MODEL_NAME.match(model["file"]) and isinstance(model.get("sha256"), str)
                                  and re.fullmatch(r"[0-9a-f]{64}", model["sha256"])):
        raise WorkspaceError(f"{path}: model must be null or an object naming a file models/adapted-NNNN.safetensors "
                             f"and its \"sha256\"; {FIX_HINT}")
    return {"current_frame": current, "proposal_threshold": float(threshold), "checkpoint": checkpoint,
            "model": model}


def _blob_reference(path: Path, data: dict, key: str, index: int, folder: Path, kind: str) -> str | None:
    name = data.get(key)
    if name is None:
        return None
    if not isinstance(name, str):
        raise WorkspaceError(f"{path}: \"{key}\" must be a file name or null, found {name!r}; {FIX_HINT}")
    match = BLOB_NAME.match(name)
    if not match or name != blob_name(index, match.group(2)):
        raise WorkspaceError(f"{path}: \"{key}\" {name!r} is not a {kind} file name of frame {index} "
                             f"({blob_name(index, '0' * 16)} with its content hash); {FIX_HINT}")
    if not (folder / name).is_file():
        raise WorkspaceError(f"{path}: its {kind} file {folder / name} is missing; {FIX_HINT}")
    return name


def parse_frame_record(path: Path, index: int, num_frames: int, frame_size: tuple[int, int]) -> StoredFrame:
    """Read and validate frames/NNNNNN.json and the mask it names (the mask is loaded: a few KB)."""
    if index >= num_frames:
        raise WorkspaceError(f"{path}: record of frame {index}, but the video has frames 0..{num_frames - 1}; "
                             f"{FIX_HINT}")
    data = read_json(path)
    try:
        record = FrameRecord.from_json(data)
    except (TypeError, ValueError) as exc:
        raise WorkspaceError(f"{path}: invalid frame record ({exc}); {FIX_HINT}") from None
    if data.get("frame", index) != index:
        raise WorkspaceError(f"{path}: says it is frame {data.get('frame')!r} but its name is frame {index}; "
                             f"{FIX_HINT}")
    workspace = path.parent.parent
    mask_file = _blob_reference(path, data, "mask", index, workspace / MASKS_DIR, "mask")
    prob_file = _blob_reference(path, data, "probability", index, workspace / PROBS_DIR, "probability")
    mask = None
    if mask_file is not None:
        mask_path = workspace / MASKS_DIR / mask_file
        try:
            mask = mask_path.read_bytes()
            size = codec.check_png(mask)
        except (OSError, codec.CodecError) as exc:
            raise WorkspaceError(f"{mask_path}: unreadable mask ({exc}); {FIX_HINT}") from None
        if size != tuple(frame_size):
            raise WorkspaceError(f"{mask_path}: mask is {size[1]}x{size[0]} but the video's frames are "
                                 f"{frame_size[1]}x{frame_size[0]}; {FIX_HINT}")
    return StoredFrame(record, mask, mask_file, prob_file)


def frame_record_json(index: int, record: FrameRecord, mask_file: str | None, prob_file: str | None) -> bytes:
    data = record.to_json()
    data.update(frame=index, mask=mask_file, probability=prob_file)
    return dump_json(data)
