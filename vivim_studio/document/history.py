"""Undo/redo per frame: each frame has its own stacks, kept while the user moves between frames.

A step stores the frame's whole state before (undo) or after (redo) the edit: the encoded mask (a few KB) and
the record. Memory is bounded by a depth per frame and a global byte budget; beyond it the oldest steps of the
least recently edited frames are forgotten first.

One action may write many frames (propagation): its steps share a `StepGroup`, and undoing (or redoing) it on
any of those frames moves the group's step of every frame where that step is still the one to undo (redo):

    group = StepGroup("propagate from frame 3")
    history.record(4, group.label, before4, group); history.record(5, group.label, before5, group)
    history.frames_to_move(5, undo=True)      # [4, 5]; then undo(4, ...) and undo(5, ...)

A frame edited after the group was recorded keeps its own later steps: the group's step there is no longer on
top, so undoing the group leaves that frame alone (and undoing on that frame undoes its own edit first).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

from .status import FrameRecord

DEFAULT_DEPTH = 100
DEFAULT_BUDGET_BYTES = 128 * 2**20


@dataclass(frozen=True)
class FrameState:
    """A frame's undoable state: encoded mask (None = empty) and record."""

    mask: bytes | None
    record: FrameRecord

    @property
    def nbytes(self) -> int:
        return (len(self.mask) if self.mask else 0) + 200


class StepGroup:
    """The steps of one action on several frames (compared by identity). `label` names the action; the frames
    it was recorded on are `frames`."""

    def __init__(self, label: str):
        self.label = label
        self.frames: set[int] = set()


@dataclass(frozen=True)
class Step:
    label: str  # what the user did, e.g. "brush stroke"; shown as "Undo brush stroke"
    state: FrameState
    group: StepGroup | None = None


class _FrameStacks:
    def __init__(self, depth: int):
        self.undo: deque[Step] = deque(maxlen=depth)
        self.redo: list[Step] = []

    @property
    def nbytes(self) -> int:
        return sum(s.state.nbytes for s in self.undo) + sum(s.state.nbytes for s in self.redo)


class UndoHistory:
    """`record(frame, label, before)` after an edit; `undo(frame, current)` / `redo(frame, current)` return the
    state to restore (or None), taking `current` onto the opposite stack."""

    def __init__(self, depth: int = DEFAULT_DEPTH, budget_bytes: int = DEFAULT_BUDGET_BYTES):
        self.depth = depth
        self.budget_bytes = budget_bytes
        self._frames: OrderedDict[int, _FrameStacks] = OrderedDict()  # least recently edited first
        self._bytes = 0

    def _stacks(self, frame: int) -> _FrameStacks:
        stacks = self._frames.get(frame)
        if stacks is None:
            stacks = self._frames[frame] = _FrameStacks(self.depth)
        self._frames.move_to_end(frame)
        return stacks

    def record(self, frame: int, label: str, before: FrameState, group: StepGroup | None = None) -> None:
        stacks = self._stacks(frame)
        self._bytes -= stacks.nbytes
        stacks.redo.clear()
        stacks.undo.append(Step(label, before, group))
        if group is not None:
            group.frames.add(frame)
        self._bytes += stacks.nbytes
        self._enforce_budget()

    def undo(self, frame: int, current: FrameState) -> Step | None:
        return self._move(frame, current, undo=True)

    def redo(self, frame: int, current: FrameState) -> Step | None:
        return self._move(frame, current, undo=False)

    def _move(self, frame: int, current: FrameState, undo: bool) -> Step | None:
        stacks = self._frames.get(frame)
        source = None if stacks is None else (stacks.undo if undo else stacks.redo)
        if not source:
            return None
        self._bytes -= stacks.nbytes
        step = source.pop()
        (stacks.redo if undo else stacks.undo).append(Step(step.label, current, step.group))
        self._bytes += stacks.nbytes
        self._frames.move_to_end(frame)
        return step

    def _top(self, frame: int, undo: bool) -> Step | None:
        stacks = self._frames.get(frame)
        source = None if stacks is None else (stacks.undo if undo else stacks.redo)
        return source[-1] if source else None

    def frames_to_move(self, frame: int, undo: bool) -> list[int]:
        """The frames an undo (redo) on `frame` changes, ascending: [frame] for a step of its own, every frame
        whose next step to undo (redo) belongs to the same group for a grouped one, [] when there is nothing."""
        step = self._top(frame, undo)
        if step is None:
            return []
        if step.group is None:
            return [frame]
        return sorted(f for f in step.group.frames if (top := self._top(f, undo)) is not None
                      and top.group is step.group)

    def _label(self, frame: int, undo: bool) -> str | None:
        step = self._top(frame, undo)
        if step is None:
            return None
        if step.group is None:
            return step.label
        count = len(self.frames_to_move(frame, undo))
        return f"{step.group.label} ({count} frame{'s' if count != 1 else ''})"

    def can_undo(self, frame: int) -> bool:
        stacks = self._frames.get(frame)
        return bool(stacks and stacks.undo)

    def can_redo(self, frame: int) -> bool:
        stacks = self._frames.get(frame)
        return bool(stacks and stacks.redo)

    def undo_label(self, frame: int) -> str | None:
        """What undo on `frame` would undo, e.g. "brush stroke" or "propagate from frame 3 (12 frames)"."""
        return self._label(frame, undo=True)

    def redo_label(self, frame: int) -> str | None:
        return self._label(frame, undo=False)

    def clear(self, frame: int | None = None) -> None:
        if frame is None:
            self._frames.clear()
            self._bytes = 0
        elif frame in self._frames:
            self._bytes -= self._frames.pop(frame).nbytes

    @property
    def nbytes(self) -> int:
        return self._bytes

    def _enforce_budget(self) -> None:
        while self._bytes > self.budget_bytes and self._frames:
            frame, stacks = next(iter(self._frames.items()))
            if len(self._frames) == 1 and len(stacks.undo) <= 1:
                break  # always keep the latest step
            self._bytes -= stacks.nbytes
            if stacks.undo:
                stacks.undo.popleft()
            elif stacks.redo:
                stacks.redo.pop(0)
            if stacks.undo or stacks.redo:
                self._bytes += stacks.nbytes
            else:
                del self._frames[frame]
