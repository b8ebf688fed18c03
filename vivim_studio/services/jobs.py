"""The contract every service job follows, so the GUI can run any of them the same way in a worker thread:

    job(..., progress: Progress | None, cancel: Cancel | None) -> a result dataclass with `cancelled: bool`

progress(done, total) is called from the worker thread (the Qt layer forwards it as a queued signal);
cancel is a `threading.Event` or a callable returning True, checked between units of work. A cancelled job
returns normally with `cancelled=True`; what it finished before stays (proposals already written are saved).
Both jobs follow it: `InferenceService.propose` and `finetune.finetune_on_corrections`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Union

Progress = Callable[[int, int], None]
Cancel = Union[Callable[[], bool], Any]  # threading.Event or a callable


def is_cancelled(cancel: Cancel | None) -> bool:
    if cancel is None:
        return False
    if hasattr(cancel, "is_set"):
        return bool(cancel.is_set())
    return bool(cancel())
