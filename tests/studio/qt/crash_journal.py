"""What the whole-app crash test (`test_gui_crash.py`) knows about the killed Studio process, and how it judges
the workspace and the export folder it left. Shared by the driver (`gui_crash_driver.py`, which prints the
journal) and the test (which reads it). No Qt.

Journal lines printed by the driver (flushed one by one, so a line printed before the kill always arrives):
    READY                         the document is open and shown
    W <line> <frame> <fp> <ufp>   the workspace starts replacing this frame's files (record, mask, probability)
    K <frame>                     ... and has replaced them
    E <n> <frame> <ufp>           user edit n changed this frame (one undo step) and the GUI returned from it
    X <j> START <fp>              export j starts; fp: fingerprint of the masks it writes
    X <j> DONE                    export j finished
    BUSY <what>                   the phase's long job runs: the kill window is open
    P <job>: <done>/<total>       the running job reported progress (the test kills on these lines)
fp: everything stored for the frame but the time stamp; ufp: what the user made (mask, status, origin).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

KEEP = "keep"  # a write that keeps the frame's probability file as it is


def sha(data: bytes | None) -> str:
    return "-" if not data else hashlib.sha256(data).hexdigest()[:16]


def frame_fingerprints(mask: bytes | None, record, probability_sha: str) -> tuple[str, str]:
    """(fp, ufp) of a frame from its mask bytes (None: empty), record and probability hash."""
    fields = record.to_json()
    fields.pop("updated", None)
    user = f"{sha(mask)}|{fields['status']}|{fields['mask_origin']}"
    return sha(f"{user}|{sorted(fields.items())}|{probability_sha}".encode()), sha(user.encode())


def document_fingerprints(document) -> dict[int, tuple[str, str]]:
    """(fp, ufp) of every frame of an open document, as held in memory (after a reopen: as on disk)."""
    return {i: frame_fingerprints(document.masks.mask_bytes(i), document.record(i),
                                  sha(document.masks.probability_bytes(i))) for i in range(document.num_frames)}


def masks_fingerprint(masks: list[tuple[int, np.ndarray]]) -> str:
    digest = hashlib.sha256()
    for index, mask in masks:
        digest.update(f"{index}:".encode())
        digest.update(np.packbits(np.asarray(mask, bool)).tobytes())
    return digest.hexdigest()[:16]


@dataclass
class Journal:
    lines: list[str]
    writes: dict[int, list[dict]] = field(default_factory=dict)  # frame -> [{line, fp, ufp, done}]
    edits: list[tuple[int, int, str]] = field(default_factory=list)  # (line, frame, ufp)
    export_starts: dict[int, str] = field(default_factory=dict)
    exports_done: list[int] = field(default_factory=list)

    @classmethod
    def parse(cls, lines: list[str]) -> "Journal":
        journal = cls(lines)
        for number, line in enumerate(lines):
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "W":
                frame = int(parts[2])
                journal.writes.setdefault(frame, []).append(
                    {"line": number, "fp": parts[3], "ufp": parts[4], "done": False})
            elif parts[0] == "K":
                journal.writes[int(parts[1])][-1]["done"] = True
            elif parts[0] == "E":
                journal.edits.append((number, int(parts[2]), parts[3]))
            elif parts[0] == "X" and parts[2] == "START":
                journal.export_starts[int(parts[1])] = parts[3]
            elif parts[0] == "X" and parts[2] == "DONE":
                journal.exports_done.append(int(parts[1]))
        return journal

    def check_workspace(self, before: dict[int, tuple[str, str]], after: dict[int, tuple[str, str]]) -> list[str]:
        """Problems (empty: none) of the reopened workspace `after`, given the state `before` the process ran.

        1. Each frame is atomic: as its last write made it if that write finished, else as its last write or the
           one before (writes to a frame never overlap: they happen under the document's lock).
        2. No edit the user finished is lost, except possibly the latest: the frame of every earlier edit holds
           what that edit made, or what a later write of that frame made.
        """
        problems = []
        for frame, (fp, ufp) in after.items():
            writes = self.writes.get(frame, [])
            if not writes:
                allowed = {before[frame][0]}
            elif writes[-1]["done"]:
                allowed = {writes[-1]["fp"]}
            else:
                allowed = {writes[-1]["fp"], writes[-2]["fp"] if len(writes) > 1 else before[frame][0]}
            if fp not in allowed:
                problems.append(f"frame {frame}: on disk {fp}, expected one of {sorted(allowed)} "
                                f"({len(writes)} write(s), last finished: {bool(writes) and writes[-1]['done']})")
        for k, (line, frame, ufp) in enumerate(self.edits[:-1]):
            allowed = {ufp} | {w["ufp"] for w in self.writes.get(frame, []) if w["line"] > line}
            if after[frame][1] not in allowed:
                problems.append(f"edit {k} (frame {frame}) finished before the latest edit but is not on disk")
        return problems


def read_vtus_export(root: Path) -> tuple[str, int]:
    """(masks fingerprint, frame count) of a complete VTUS export in `root` (one video); AssertionError naming
    what is missing or extra when it is not complete."""
    import json

    import cv2

    manifests = list((root / "manifests").rglob("*.json"))
    assert len(manifests) == 1, f"{root}: expected one manifest, found {manifests}"
    manifest = json.loads(manifests[0].read_text())
    split, video = manifest["split"], manifest["video_id"]
    frames_dir, masks_dir = root / split / video, root / f"{split}_GT" / video
    names = [f["name"] for f in manifest["frames"]]
    assert sorted(p.stem for p in frames_dir.iterdir()) == sorted(names), f"{frames_dir}: frames differ from manifest"
    assert sorted(p.stem for p in masks_dir.iterdir()) == sorted(names), f"{masks_dir}: masks differ from manifest"
    masks = []
    for entry in manifest["frames"]:
        image = cv2.imread(str(frames_dir / f"{entry['name']}.jpg"))
        mask = cv2.imread(str(masks_dir / f"{entry['name']}.png"), cv2.IMREAD_UNCHANGED)
        assert image is not None and mask is not None, f"{root}: frame {entry['name']} unreadable"
        masks.append((entry["index"], mask > 127))
    return masks_fingerprint(masks), len(masks)
