"""Undo/redo per frame: each frame has its own stacks, kept while the user moves between frames.

A step stores the frame's whole state before (undo) or after (redo) the edit: the encoded mask (a few KB) and
the record. An operation over several frames (merging a lesion into another through the clip) marks its steps
with one group number, so that undoing it on any of its frames undoes it on all (`group_frames`). Memory is
bounded by a depth per frame and a global byte budget; beyond it the oldest steps of the least recently edited
frames are forgotten first.
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


@dataclass(frozen=True)
class Step:
    label: str  # what the user did, e.g. "brush stroke"; shown as "Undo brush stroke"
    state: FrameState
    group: int | None = None  # the operation over several frames this step belongs to


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
        self._groups: dict[int, list[int]] = {}  # group -> its frames
        self._next_group = 1

    def _stacks(self, frame: int) -> _FrameStacks:
        stacks = self._frames.get(frame)
        if stacks is None:
            stacks = self._frames[frame] = _FrameStacks(self.depth)
        self._frames.move_to_end(frame)
        return stacks

    def new_group(self) -> int:
        """A group number for the steps of one operation over several frames."""
        group, self._next_group = self._next_group, self._next_group + 1
        self._groups[group] = []
        return group

    def group_frames(self, frame: int, undo: bool = True) -> list[int]:
        """The frames whose next undo (redo) step belongs to the same group as `frame`'s: undone together.
        [frame] for a step of its own (or none)."""
        group = self._top_group(frame, undo)
        if group is None:
            return [frame]
        return [f for f in self._groups.get(group, [frame]) if self._top_group(f, undo) == group]

    def _top_group(self, frame: int, undo: bool) -> int | None:
        stacks = self._frames.get(frame)
        source = None if stacks is None else (stacks.undo if undo else stacks.redo)
        return source[-1].group if source else None

    def record(self, frame: int, label: str, before: FrameState, group: int | None = None) -> None:
        stacks = self._stacks(frame)
        self._bytes -= stacks.nbytes
        stacks.redo.clear()
        stacks.undo.append(Step(label, before, group))
        if group is not None:
            self._groups.setdefault(group, []).append(frame)
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

    def can_undo(self, frame: int) -> bool:
        stacks = self._frames.get(frame)
        return bool(stacks and stacks.undo)

    def can_redo(self, frame: int) -> bool:
        stacks = self._frames.get(frame)
        return bool(stacks and stacks.redo)

    def undo_label(self, frame: int) -> str | None:
        stacks = self._frames.get(frame)
        return stacks.undo[-1].label if stacks and stacks.undo else None

    def redo_label(self, frame: int) -> str | None:
        stacks = self._frames.get(frame)
        return stacks.redo[-1].label if stacks and stacks.redo else None

    def clear(self, frame: int | None = None) -> None:
        if frame is None:
            self._frames.clear()
            self._groups.clear()
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
