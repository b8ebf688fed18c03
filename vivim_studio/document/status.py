"""Per-frame review status and provenance.

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
"""

from __future__ import annotations

import datetime as _dt
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


def prompt_origin(checkpoint_sha256: str) -> str:
    return f"prompt:{checkpoint_sha256[:16]}"


Click = tuple[int, int, bool]  # (x, y, positive)


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class FrameRecord:
    """Everything known about one frame besides its pixels. Immutable: changes make a new record.

    status        FrameStatus
    mask_origin   who/what made the current mask (see module docstring); None when the frame has no mask
    model         checkpoint SHA-256 prefix of the frame's probability map; None without a proposal
    threshold     threshold that turned the probability map into the mask (model masks only)
    area          number of mask pixels (the timeline plots it without decoding masks)
    confidence    `codec.proposal_confidence` of the probability map; None without a proposal
    updated       UTC time of the last change (ISO 8601)
    clicks        the expert's clicks on this frame, (x, y, positive) in frame pixels, oldest first
    """

    status: FrameStatus = FrameStatus.UNREVIEWED
    mask_origin: str | None = None
    model: str | None = None
    threshold: float | None = None
    area: int = 0
    confidence: float | None = None
    updated: str | None = None
    clicks: tuple[Click, ...] = ()

    @property
    def propagated(self) -> bool:
        """Proposed by optical flow from a neighbour (origin "flow:<i>"), not by a model."""
        return self.status == FrameStatus.PROPOSED and (self.mask_origin or "").startswith("flow:")

    def with_changes(self, **changes: Any) -> "FrameRecord":
        return replace(self, updated=now_utc(), **changes)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        data["clicks"] = [[x, y, positive] for x, y, positive in self.clicks]
        return data

    @classmethod
    def from_json(cls, data: Any) -> "FrameRecord":
        """Parse a record written by `to_json`; raises ValueError/TypeError describing the first bad field."""
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
        return cls(status, origin, model, None if threshold is None else float(threshold), area,
                   None if confidence is None else float(confidence), data.get("updated"),
                   _parse_clicks(data.get("clicks", [])))


def _parse_clicks(value: Any) -> tuple[Click, ...]:
    """[[x, y, positive], ...] -> ((x, y, positive), ...); raises ValueError on anything else."""
    if not isinstance(value, list) or len(value) > 10_000:
        raise ValueError(f"clicks must be a list of [x, y, positive], found {str(value)[:80]!r}")
    clicks = []
    for item in value:
        if (not isinstance(item, list) or len(item) != 3 or not all(isinstance(v, int) and not isinstance(v, bool)
                                                                     for v in item[:2])
                or not isinstance(item[2], bool) or min(item[:2]) < 0):
            raise ValueError(f"a click must be [x, y, positive] with x, y >= 0 integers, found {item!r}")
        clicks.append((item[0], item[1], item[2]))
    return tuple(clicks)
