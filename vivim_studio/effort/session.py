"""One simulated annotation session: the protocol (`protocol`) applied to a real `VideoDocument` through the
same document and service calls the GUI makes, by one strategy (`strategies`).

    ledger = run_session(document, truth, strategy, accept_iou=0.85)

Each round: the expert range-accepts the long qualifying stretches it sees on the timeline, visits the worst
open frame, corrects it (at most MAX_INTERACTIONS_PER_ROUND times) and accepts it once it qualifies; then the
strategy's tool works on its own (`strategy.between_rounds`) and the next round starts. The session ends when
every frame is accepted.
"""

from __future__ import annotations

import time
from typing import Protocol

import numpy as np

from ..document import FrameStatus
from .protocol import (ACCEPT_IOU, MAX_INTERACTIONS_PER_FRAME, MAX_INTERACTIONS_PER_ROUND, Correction, Ledger,
                       frame_to_visit, iou, next_correction, qualifying_runs)

RANGE_ACCEPT_MIN_FRAMES = 5  # the expert range-accepts qualifying stretches at least this long at a round's start
ALL_STATUSES = tuple(FrameStatus)


class Strategy(Protocol):
    """A way of annotating: how the masks start, what one correction does, what the tool does between rounds."""

    name: str
    correction_kind: str  # "click" or "stamp": what the ledger charges for a correction

    def start(self, document) -> None: ...

    def correct(self, document, frame: int, correction: Correction) -> None: ...

    def between_rounds(self, document, round_index: int) -> None: ...


def frame_ious(document, truth: np.ndarray) -> np.ndarray:
    """IoU of every frame's current mask against the expert masks `truth` bool (N, H, W)."""
    return np.array([iou(document.mask(i), truth[i]) for i in range(document.num_frames)])


def accepted_frames(document) -> np.ndarray:
    return np.array([document.status(i) == FrameStatus.ACCEPTED for i in range(document.num_frames)])


class _Clock:
    """Compute time the expert waits for: everything the tool does, none of the simulated expert's own work."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        self.per_round: list[float] = []

    def time(self, fn, *args) -> float:
        started = time.perf_counter()
        fn(*args)
        seconds = time.perf_counter() - started
        self.ledger.compute_seconds += seconds
        return seconds


def run_session(document, truth: np.ndarray, strategy: Strategy, accept_iou: float = ACCEPT_IOU,
                ledger: Ledger | None = None, max_rounds: int | None = None) -> tuple[Ledger, list[float]]:
    """Annotate `document` with `strategy` until every frame is accepted. Returns the ledger and the compute
    seconds of each round (correction responses plus the tool's work between rounds)."""
    ledger = ledger or Ledger(document.num_frames)
    clock = _Clock(ledger)
    clock.time(strategy.start, document)
    round_seconds: list[float] = []
    charge = ledger.click if strategy.correction_kind == "click" else ledger.stamp
    while True:
        ious, accepted = frame_ious(document, truth), accepted_frames(document)
        ledger.record_curve(float(ious.mean()))
        frame = frame_to_visit(ious, accepted)
        if frame is None:
            break
        everything_qualifies = ious[frame] >= accept_iou
        for run in qualifying_runs(ious, accepted, accept_iou):
            if everything_qualifies or sum(not accepted[i] for i in run) >= RANGE_ACCEPT_MIN_FRAMES:
                document.accept_frames(run, only=tuple(s for s in ALL_STATUSES if s != FrameStatus.ACCEPTED))
                ledger.range_accept(len(run))
        if everything_qualifies:
            continue
        if accepted_frames(document)[frame]:
            continue  # taken by a range accept (cannot happen for the worst frame, kept for safety)
        if max_rounds is not None and ledger.rounds >= max_rounds:
            break
        ledger.rounds += 1
        ledger.look()
        spent = 0.0
        for _ in range(MAX_INTERACTIONS_PER_ROUND):
            current = document.mask(frame)
            if iou(current, truth[frame]) >= accept_iou:
                break
            correction = next_correction(current, truth[frame])
            spent += clock.time(strategy.correct, document, frame, correction)
            charge(frame)
            ledger.record_curve(float(frame_ious(document, truth).mean()))
            if ledger.corrections_on(frame) >= MAX_INTERACTIONS_PER_FRAME:
                break
        if iou(document.mask(frame), truth[frame]) >= accept_iou:
            document.accept(frame)
            ledger.accept()
        elif ledger.corrections_on(frame) >= MAX_INTERACTIONS_PER_FRAME:
            ledger.fail(frame)
            document.set_mask(frame, truth[frame], label="expert mask (failed frame)")
            document.accept(frame)
        spent += clock.time(strategy.between_rounds, document, ledger.rounds)
        round_seconds.append(spent)
    return ledger, round_seconds


class TraceStrategy:
    """Every frame outlined by hand and accepted: the baseline of "hours". Charged per frame, not per round."""

    name = "trace"
    correction_kind = "trace"


def run_trace(document, truth: np.ndarray, ledger: Ledger | None = None) -> Ledger:
    """Outline every frame (the expert mask), one traced outline each, accepted as drawn."""
    ledger = ledger or Ledger(document.num_frames)
    for index in range(document.num_frames):
        if truth[index].any():
            document.set_mask(index, truth[index], label="traced outline")
        document.accept(index)
        ledger.trace(bool(truth[index].any()))
    ledger.record_curve(float(frame_ious(document, truth).mean()))
    return ledger


class StampStrategy:
    """Brush stamps only, no model: masks start empty; a correction is one disk of the brush (or eraser)."""

    name = "stamps"
    correction_kind = "stamp"

    def start(self, document) -> None:
        pass

    def correct(self, document, frame: int, correction: Correction) -> None:
        document.paint_stroke(frame, [(correction.x, correction.y)], correction.radius, erase=not correction.positive)

    def between_rounds(self, document, round_index: int) -> None:
        pass
