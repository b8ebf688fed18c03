"""Review status and provenance of each frame and of each lesion on it.

Status                 meaning                                              `propose` may overwrite it
  unreviewed           no mask yet (or none looked at)                      yes
  proposed             mask from the model (or optical flow), not reviewed  yes
  edited               a human changed the mask (or it was imported GT)     never
  accepted             a human confirmed the mask                           never

`mask_origin` says who/what produced the current mask:
  "human"                  drawn or corrected by the user
  "model:<sha256>"         a proposal of the checkpoint with that SHA-256 (first 16 hex digits)
  "flow:<frame>"           propagated by optical flow from frame <frame> (0-based)
  "prompt:<sha256>"        made by that checkpoint from the expert's clicks or box (`clicks` lists the clicks)
  "import:<what>"          loaded with the source, e.g. "import:vtus-gt"
  "imported:<file>"        brought in by `vivim-studio import` from that mask file (its name)

A frame's mask is a label map: 0 background, 1..255 lesion ids (a thyroid with two nodules holds lesions 1 and
2, the same ids through the clip). Each lesion on a frame has a `LesionRecord` with its own status and origin:
which lesions a human edited or accepted. The frame's status stays the summary the timeline, navigation and
exports use: a human edit of any lesion makes the frame "edited" (the human looked at and changed the frame),
accepting the frame accepts each of its lesions, and proposals never write into a frame a human reviewed.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import asdict, dataclass, replace
from enum import Enum
from typing import Any


class FrameStatus(str, Enum):
    UNREVIEWED = "unreviewed"
    PROPOSED = "proposed"
    EDITED = "edited"
    ACCEPTED = "accepted"

    @property
    def human_reviewed(self) -> bool:
        """True for edited/accepted frames: human work that proposals never overwrite."""
        return self in (FrameStatus.EDITED, FrameStatus.ACCEPTED)

    def __str__(self) -> str:
        return self.value


HUMAN = "human"


def model_origin(checkpoint_sha256: str) -> str:
    return f"model:{checkpoint_sha256[:16]}"


def flow_origin(from_frame: int) -> str:
    return f"flow:{from_frame}"


REVIEWED = (FrameStatus.EDITED, FrameStatus.ACCEPTED)  # frames a human settled
FRAME_SELECTIONS = {"reviewed": REVIEWED, "accepted": (FrameStatus.ACCEPTED,), "all": None}


def frames_in_selection(document, selection: str, frames=None, error: type[Exception] = ValueError) -> list[int]:
    """The frames of `document` (of `frames`, default all) whose status a selection of FRAME_SELECTIONS takes
    ("reviewed", "accepted", "all"); `error` for an unknown selection. Export and report choose frames alike."""
    if selection not in FRAME_SELECTIONS:
        raise error(f"unknown selection {selection!r}; choose one of {', '.join(FRAME_SELECTIONS)}")
    wanted = FRAME_SELECTIONS[selection]
    frames = frames if frames is not None else range(document.num_frames)
    return [i for i in frames if 0 <= i < document.num_frames and (wanted is None or document.status(i) in wanted)]


def prompt_origin(checkpoint_sha256: str) -> str:
    return f"prompt:{checkpoint_sha256[:16]}"


Click = tuple[int, int, bool]  # (x, y, positive)
LesionClick = tuple[int, int, bool, int]  # (x, y, positive, lesion id): a click stored with the lesion it drew
MAX_LESION_ID = 255  # label maps are uint8


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_id(value: Any, what: str = "lesion id") -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_LESION_ID:
        raise ValueError(f"{what} must be an integer 1..{MAX_LESION_ID}, found {value!r}")
    return value


@dataclass(frozen=True)
class LesionRecord:
    """One lesion on one frame.

    id        1..255, the value of its pixels in the frame's label map (the same lesion keeps its id in the clip)
    status    PROPOSED (from the model, optical flow, an import), EDITED (a human changed it), ACCEPTED
    origin    who/what made its pixels (as FrameRecord.mask_origin)
    area      its pixel count
    box       (x0, y0, x1, y1) bounding box, end-exclusive; None when not known (a record of format 2)
    centroid  (x, y) centre of its pixels; None when not known
    """

    id: int
    status: FrameStatus = FrameStatus.PROPOSED
    origin: str | None = None
    area: int = 0
    box: tuple[int, int, int, int] | None = None
    centroid: tuple[float, float] | None = None

    def __post_init__(self) -> None:  # kept to 1/100 pixel, so a record reads back from JSON equal to itself
        if self.centroid is not None:
            object.__setattr__(self, "centroid", (round(float(self.centroid[0]), 2), round(float(self.centroid[1]), 2)))
        if self.box is not None:
            object.__setattr__(self, "box", tuple(int(v) for v in self.box))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status.value, "origin": self.origin, "area": self.area,
                "box": None if self.box is None else list(self.box),
                "centroid": None if self.centroid is None else list(self.centroid)}

    @classmethod
    def from_json(cls, data: Any) -> "LesionRecord":
        if not isinstance(data, dict):
            raise TypeError(f"a lesion must be a JSON object, found {str(data)[:60]!r}")
        lesion = _check_id(data.get("id"))
        origin, area, box, centroid = data.get("origin"), data.get("area", 0), data.get("box"), data.get("centroid")
        if origin is not None and not isinstance(origin, str):
            raise TypeError(f"lesion {lesion}: origin must be a string or null, found {origin!r}")
        if not isinstance(area, int) or isinstance(area, bool) or area < 0:
            raise ValueError(f"lesion {lesion}: area must be a non-negative integer, found {area!r}")
        if box is not None and not (isinstance(box, list) and len(box) == 4 and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in box)):
            raise ValueError(f"lesion {lesion}: box must be [x0, y0, x1, y1] of non-negative integers or null")
        if centroid is not None and not (isinstance(centroid, list) and len(centroid) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in centroid)):
            raise ValueError(f"lesion {lesion}: centroid must be [x, y] numbers or null")
        return cls(lesion, FrameStatus(data.get("status", "proposed")), origin, area,
                   None if box is None else tuple(box), None if centroid is None else (float(centroid[0]),
                                                                                      float(centroid[1])))


@dataclass(frozen=True)
class FrameRecord:
    """Everything known about one frame besides its pixels. Immutable: changes make a new record.

    status        FrameStatus: the frame's summary (see the module docstring)
    mask_origin   who/what made the latest change of the mask (see module docstring); None without a mask
    model         checkpoint SHA-256 prefix of the frame's probability map; None without a proposal
    threshold     threshold that turned the probability map into the mask (model masks only)
    area          number of mask pixels, every lesion together (the timeline plots it without decoding masks)
    confidence    `codec.proposal_confidence` of the probability map; None without a proposal
    updated       UTC time of the last change (ISO 8601)
    lesion_clicks the expert's clicks on this frame, (x, y, positive, lesion id) in frame pixels, oldest first
                  (stored as "clicks"; `clicks` gives them as (x, y, positive), every lesion's, for markers)
    lesions       a LesionRecord per lesion on the frame, by increasing id
    """

    status: FrameStatus = FrameStatus.UNREVIEWED
    mask_origin: str | None = None
    model: str | None = None
    threshold: float | None = None
    area: int = 0
    confidence: float | None = None
    updated: str | None = None
    lesion_clicks: tuple[LesionClick, ...] = ()
    lesions: tuple[LesionRecord, ...] = ()

    @property
    def clicks(self) -> tuple[Click, ...]:
        """Every lesion's clicks as (x, y, positive), oldest first (`clicks_of` for one lesion's)."""
        return tuple((x, y, positive) for x, y, positive, _ in self.lesion_clicks)

    @property
    def propagated(self) -> bool:
        """Proposed by optical flow from a neighbour (origin "flow:<i>"), not by a model."""
        return self.status == FrameStatus.PROPOSED and (self.mask_origin or "").startswith("flow:")

    def with_changes(self, **changes: Any) -> "FrameRecord":
        return replace(self, updated=now_utc(), **changes)

    @property
    def lesion_ids(self) -> tuple[int, ...]:
        return tuple(lesion.id for lesion in self.lesions)

    def lesion(self, lesion_id: int) -> LesionRecord | None:
        return next((lesion for lesion in self.lesions if lesion.id == lesion_id), None)

    def clicks_of(self, lesion_id: int) -> tuple[Click, ...]:
        """The clicks that drew lesion `lesion_id`, (x, y, positive), oldest first."""
        return tuple((x, y, positive) for x, y, positive, k in self.lesion_clicks if k == lesion_id)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        del data["lesion_clicks"]
        data["clicks"] = [[x, y, positive, k] for x, y, positive, k in self.lesion_clicks]
        data["lesions"] = [lesion.to_json() for lesion in self.lesions]
        return data

    @classmethod
    def from_json(cls, data: Any) -> "FrameRecord":
        """Parse a record written by `to_json` (or by format 2, which had no "lesions": its mask is lesion 1);
        raises ValueError/TypeError describing the first bad field."""
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, found {type(data).__name__}")
        status = FrameStatus(data.get("status", "unreviewed"))
        origin, model = data.get("mask_origin"), data.get("model")
        for name, value in (("mask_origin", origin), ("model", model), ("updated", data.get("updated"))):
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a string or null, found {value!r}")
        threshold, confidence, area = data.get("threshold"), data.get("confidence"), data.get("area", 0)
        for name, value in (("threshold", threshold), ("confidence", confidence)):
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                      or not 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be a number in [0, 1] or null, found {value!r}")
        if not isinstance(area, int) or isinstance(area, bool) or area < 0:
            raise ValueError(f"area must be a non-negative integer, found {area!r}")
        if "lesions" in data:
            lesions = _parse_lesions(data["lesions"])
        elif data.get("mask") is not None or area > 0:  # format 2: one lesion, the frame's whole mask
            lesions = (LesionRecord(1, status, origin, area),)
        else:
            lesions = ()
        return cls(status, origin, model, None if threshold is None else float(threshold), area,
                   None if confidence is None else float(confidence), data.get("updated"),
                   _parse_clicks(data.get("clicks", [])), lesions)


def _parse_lesions(value: Any) -> tuple[LesionRecord, ...]:
    if not isinstance(value, list) or len(value) > MAX_LESION_ID:
        raise ValueError(f"lesions must be a list of at most {MAX_LESION_ID} lesion objects")
    lesions = tuple(LesionRecord.from_json(item) for item in value)
    ids = [lesion.id for lesion in lesions]
    if ids != sorted(set(ids)):
        raise ValueError(f"lesions must be listed once each by increasing id, found ids {ids}")
    return lesions


def _parse_clicks(value: Any) -> tuple[LesionClick, ...]:
    """[[x, y, positive(, lesion)], ...] -> ((x, y, positive, lesion), ...) (format 2 clicks drew lesion 1);
    raises ValueError on anything else."""
    if not isinstance(value, list) or len(value) > 10_000:
        raise ValueError(f"clicks must be a list of [x, y, positive, lesion], found {str(value)[:80]!r}")
    clicks = []
    for item in value:
        if (not isinstance(item, list) or len(item) not in (3, 4)
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in item[:2])
                or not isinstance(item[2], bool) or min(item[:2]) < 0):
            raise ValueError(f"a click must be [x, y, positive, lesion] with x, y >= 0 integers, found {item!r}")
        lesion = _check_id(item[3], "a click's lesion") if len(item) == 4 else 1
        clicks.append((item[0], item[1], item[2], lesion))
    return tuple(clicks)
