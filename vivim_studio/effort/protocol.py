"""The simulated expert's fixed protocol: which frame it visits, where it clicks or stamps, when it accepts,
and what each action costs. Pure NumPy/OpenCV, no document: `session.py` applies it to a real document.

The protocol follows the DAVIS interactive benchmark and the RITM / SAM click protocols, so that it cannot
drift toward what one tool does well:

* each round visits the not-yet-accepted frame with the lowest IoU against the expert mask (ties: earliest);
* there the expert makes at most `MAX_INTERACTIONS_PER_ROUND` corrections, each placed from the current error:
  at the point deepest inside the largest error region (a connected component of missed lesion or of spill),
  positive for missed lesion, negative for spill; a brush stamp there has the radius of the largest disk that
  fits inside the region (at least `MIN_STAMP_RADIUS` px);
* a frame qualifies once its IoU reaches the acceptance threshold (or both masks are empty); a contiguous run
  of qualifying frames may be accepted with one range accept;
* a frame that needs more than `MAX_INTERACTIONS_PER_FRAME` corrections is charged that many, counted as
  failed, and set to the expert mask.

Masks are bool (H, W); points are (x, y) = (column, row).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from vivim_core.prompts import deepest_point, error_regions

ACCEPT_IOU = 0.85
MAX_INTERACTIONS_PER_ROUND = 3
MAX_INTERACTIONS_PER_FRAME = 20
MIN_STAMP_RADIUS = 3


@dataclass(frozen=True)
class CostTable:
    """Estimated human seconds per action (stated in every result file)."""

    click: float = 1.0
    stamp: float = 1.5
    accept: float = 0.5
    range_accept: float = 0.5
    look: float = 0.5  # each frame looked at: the frame visited in a round, every frame of an accepted range
    trace_lesion: float = 20.0  # outlining a frame with a lesion by hand
    trace_empty: float = 2.0  # checking a frame without one

    def to_json(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Correction:
    """One simulated interaction: `positive` adds lesion (missed region), else removes spill. `radius` is the
    largest disk that fits inside the error region at (x, y), at least MIN_STAMP_RADIUS (used by stamps)."""

    x: int
    y: int
    positive: bool
    radius: int
    region_pixels: int


def iou(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two bool masks; 1.0 when both are empty."""
    union = np.count_nonzero(prediction | truth)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(prediction & truth)) / union


def next_correction(prediction: np.ndarray, truth: np.ndarray) -> Correction | None:
    """Where the expert corrects next: the deepest point of the largest error region; None without error."""
    regions = error_regions(prediction, truth)
    if not regions:
        return None
    region, positive = regions[0]
    x, y, depth = deepest_point(region)
    radius = max(MIN_STAMP_RADIUS, int(np.floor(depth)))
    return Correction(x, y, positive, radius, int(np.count_nonzero(region)))


def qualifies(prediction: np.ndarray, truth: np.ndarray, threshold: float = ACCEPT_IOU) -> bool:
    return iou(prediction, truth) >= threshold


def frame_to_visit(ious: np.ndarray, accepted: np.ndarray) -> int | None:
    """The not-yet-accepted frame with the lowest IoU (ties: earliest); None when all are accepted."""
    open_frames = np.flatnonzero(~accepted)
    if len(open_frames) == 0:
        return None
    return int(open_frames[np.argmin(ious[open_frames])])


def qualifying_runs(ious: np.ndarray, accepted: np.ndarray, threshold: float = ACCEPT_IOU) -> list[range]:
    """Maximal runs of consecutive frames that are accepted or qualify, each holding at least one frame not
    accepted yet: what one range accept each can take. Accepted frames inside a run are left as they are."""
    good = accepted | (ious >= threshold)
    runs, start = [], None
    for index, ok in enumerate([*good, False]):
        if ok and start is None:
            start = index
        elif not ok and start is not None:
            if not accepted[start:index].all():
                runs.append(range(start, index))
            start = None
    return runs


@dataclass
class Ledger:
    """What the simulated expert did and what it cost. Call the action methods; read the totals."""

    num_frames: int
    costs: CostTable = field(default_factory=CostTable)
    interactions: int = 0
    human_seconds: float = 0.0
    compute_seconds: float = 0.0
    rounds: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {
        "click": 0, "stamp": 0, "accept": 0, "range_accept": 0, "trace": 0})
    per_frame: dict[int, int] = field(default_factory=dict)  # corrections charged to each frame
    failed_frames: list[int] = field(default_factory=list)
    curve: list[tuple[int, float]] = field(default_factory=list)  # (interactions, mean IoU over all frames)

    def _count(self, kind: str, seconds: float, frame: int | None = None, correction: bool = False) -> None:
        self.interactions += 1
        self.counts[kind] += 1
        self.human_seconds += seconds
        if correction and frame is not None:
            self.per_frame[frame] = self.per_frame.get(frame, 0) + 1

    def look(self, frames: int = 1) -> None:
        self.human_seconds += self.costs.look * frames

    def click(self, frame: int) -> None:
        self._count("click", self.costs.click, frame, correction=True)

    def stamp(self, frame: int) -> None:
        self._count("stamp", self.costs.stamp, frame, correction=True)

    def accept(self) -> None:
        self._count("accept", self.costs.accept)

    def range_accept(self, frames: int) -> None:
        self._count("range_accept", self.costs.range_accept)
        self.look(frames)

    def trace(self, has_lesion: bool) -> None:
        self._count("trace", self.costs.trace_lesion if has_lesion else self.costs.trace_empty)

    def corrections_on(self, frame: int) -> int:
        return self.per_frame.get(frame, 0)

    def fail(self, frame: int) -> None:
        """The frame used up its corrections: charged MAX_INTERACTIONS_PER_FRAME in all, set to the expert
        mask by the caller. The charge tops up what it already spent."""
        missing = MAX_INTERACTIONS_PER_FRAME - self.corrections_on(frame)
        self.interactions += max(0, missing)
        self.human_seconds += max(0, missing) * self.costs.click
        self.per_frame[frame] = MAX_INTERACTIONS_PER_FRAME
        self.failed_frames.append(frame)

    def record_curve(self, mean_iou: float) -> None:
        self.curve.append((self.interactions, float(mean_iou)))

    def per_100_frames(self, value: float) -> float:
        return value * 100.0 / self.num_frames
