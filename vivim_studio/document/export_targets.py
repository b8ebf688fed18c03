"""Where an export lands and whose it is: the video's id (a folder name, unique and stable within one output
folder), the output paths of one video, and the checks that keep an export off its own inputs and off another
video's export in the same folder.

    ids       `safe_video_id`: the source's name with letters and digits of any script kept; a name that
              leaves nothing usable gets a short hash of the video's identity ("video-1a2b3c4d").
    owners    every export writes a manifest (manifests/[<Split>/]<id>.json) naming its source's identity; an
              existing output of the same id is replaced only when its manifest names this very video.
              Otherwise a default id gets the identity hash appended ("clip-1a2b3c4d"), and an id the user chose
              is refused.
    inputs    the output folder may not be, contain or lie inside the video, its frame folder, its dataset or
              its workspace (`vivim_core.file_safety.check_output_apart`).
"""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path, PurePosixPath
from typing import Any

from vivim_core.file_safety import UnsafePathError, check_output_apart, confined, regular_file, safe_name

from .exceptions import ExportError
from .sources import MissingSource

MAX_ID_BYTES = 150  # UTF-8 bytes: leaves room for "_GT", ".nii.gz", ".json" within a 255-byte file name
MAX_MANIFEST_BYTES = 64 << 20
MANIFEST_FORMAT = "vivim-studio-export"


def _kept(char: str) -> bool:
    """Letters, marks and digits of every script, and '-', '_', '.': what a video id keeps of a name."""
    return char in "-_." or unicodedata.category(char)[0] in "LMN"


def _is_safe(name: str) -> bool:
    try:
        safe_name(name, "video id")
    except UnsafePathError:
        return False
    return True


def safe_video_id(name: str, identity: str | None = None) -> str:
    """A folder name for the video called `name`: its name (NFC) with every run of other characters (spaces,
    separators, punctuation, control and formatting characters) replaced by '_'. Names in any script keep
    their letters ("甲状腺" stays "甲状腺"). A name that leaves nothing usable (only punctuation, a device
    name such as "con") becomes "video" or "<name>" with "-<first 8 hex digits of `identity`>" appended
    when the identity (a SHA-256 hex digest) is given, so different videos do not share it."""
    text = unicodedata.normalize("NFC", str(name))
    cleaned, run = [], False
    for char in text:
        if _kept(char):
            cleaned.append(char)
            run = False
        elif not run:
            cleaned.append("_")
            run = True
    result = "".join(cleaned).strip("._")
    truncated = False
    while len(result.encode("utf-8")) > MAX_ID_BYTES:
        result, truncated = result[:-1], True
    result = result.rstrip("._")
    if result and _is_safe(result) and not truncated:
        return result
    tail = identity[:8] if identity else None
    if not result:
        return f"video-{tail}" if tail else "video"
    return f"{result}-{tail}" if tail else f"{result}_"


def output_paths(format: str, split: str | None, video_id: str) -> list[PurePosixPath]:
    """The paths (relative to the output folder) one video's export occupies; the manifest last."""
    if format == "vtus":
        return [PurePosixPath(split, video_id), PurePosixPath(f"{split}_GT", video_id),
                PurePosixPath("manifests", split, f"{video_id}.json")]
    name = {"nifti": f"{video_id}.nii.gz", "dicom-seg": f"{video_id}.seg.dcm"}.get(format, video_id)
    return [PurePosixPath(name), PurePosixPath("manifests", f"{video_id}.json")]


def document_digests(document) -> set[str]:
    """Every identity digest this document's video is known by: the current one and those an older Vivim Studio
    computed for it (an older export's manifest names one of those)."""
    source, workspace = document.source, document.workspace
    digests = {workspace.identity.digest, *workspace.identity_aliases} if workspace is not None \
        else {source.identity.digest}
    if not isinstance(source, MissingSource):
        digests.add(source.legacy_digest())
    return digests


def _manifest_owner(path: Path) -> dict[str, Any] | None:
    """The "source" of an export manifest at `path`, or None when there is none or it is not ours."""
    try:
        regular_file(path, "manifest", MAX_MANIFEST_BYTES)
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnsafePathError, OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT or not isinstance(data.get("source"), dict):
        return None
    return data["source"]


def check_targets(root: Path, paths: list[PurePosixPath], digests: set[str]) -> str | None:
    """None when every path is free in `root`, or held by an earlier export of this same video (its manifest
    names one of `digests`); otherwise a description of what holds them. UnsafePathError when a path would
    leave `root` (a symbolic link inside it)."""
    for path in paths:
        confined(root, *path.parts)
    taken = [p for p in paths if os.path.lexists(root.joinpath(*p.parts))]
    if not taken:
        return None
    owner = _manifest_owner(root.joinpath(*paths[-1].parts))
    if owner is not None and owner.get("identity") in digests:
        return None
    shown = root.joinpath(*taken[0].parts)
    if owner is None:
        return f"{shown} exists and was not written by an export of this video (no manifest of it at " \
               f"{root.joinpath(*paths[-1].parts)})"
    return f"{shown} holds the export of another video ({owner.get('name')!r}, identity " \
           f"{str(owner.get('identity'))[:12]})"


def choose_video_id(document, root: Path, format: str, split: str | None, chosen: str | None) -> str:
    """The id to export `document` under in `root`. `chosen` (the user's --video-id) must be a plain name and
    free (or this video's); the default id gets the identity hash appended when another video holds it."""
    digests = document_digests(document)
    identity = document.workspace.identity.digest if document.workspace is not None \
        else document.source.identity.digest
    if chosen is not None:
        video_id = safe_name(chosen, "--video-id")
        occupant = check_targets(root, output_paths(format, split, video_id), digests)
        if occupant is not None:
            raise ExportError(f"{occupant}; nothing was replaced. Choose another --video-id (e.g. "
                              f"{video_id}-{identity[:8]}) or another output folder")
        return video_id
    default = safe_video_id(document.source.video_id, identity)
    for video_id in (default, f"{default}-{identity[:8]}"):
        occupant = check_targets(root, output_paths(format, split, video_id), digests)
        if occupant is None:
            return video_id
    raise ExportError(f"{occupant}; nothing was replaced. Give the video another id (--video-id NAME) or choose "
                      f"another output folder")


def export_inputs(document) -> list[Path]:
    """What an export must never land on: the video (file or frame folder), its ground-truth folder and dataset
    (for a dataset case) and its workspace."""
    source = document.source
    inputs = [Path(source.path)]
    mask_folder = getattr(source, "mask_folder", None)
    if mask_folder is not None:
        inputs.append(Path(mask_folder))
    if getattr(source, "is_dataset_case", False):
        inputs.append(Path(source.path).parent.parent)  # ROOT of ROOT/<Split>/<case> (or <dataset> of a polyp case)
    if document.workspace is not None:
        inputs.append(Path(document.workspace.folder))
    return inputs


def check_apart_from_inputs(document, root: Path) -> None:
    check_output_apart(root, export_inputs(document), "the export folder")


def default_export_folder(document, preferred: Path | None = None) -> Path:
    """`preferred` when it is apart from the document's inputs; else "vivim-export" beside the video, moved up
    until it is apart (beside the dataset for a dataset case)."""
    inputs = export_inputs(document)

    def apart(folder: Path) -> bool:
        try:
            check_output_apart(folder, inputs)
        except UnsafePathError:
            return False
        return True

    if preferred is not None and apart(preferred):
        return preferred
    base = Path(document.source.path).parent
    while True:
        candidate = base / "vivim-export"
        if apart(candidate) or base.parent == base:
            return candidate
        base = base.parent
