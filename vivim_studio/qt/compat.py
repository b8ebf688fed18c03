"""Work-arounds for defects of the Qt bindings that would otherwise crash the Studio.

PySide6 6.12.0 on CPython < 3.12: every Qt method that returns None (all void methods, `update()`,
`setVisible()`, `QPainterPath.lineTo()`..., and pointer getters returning nullptr) gives back a reference to
None it never took. Since Python 3.12 None is immortal and this is harmless; on 3.11 None's reference count
(about 15,000 after start-up) drops by one per call, and after a few minutes of painting and scrubbing
CPython aborts with "Fatal Python error: none_dealloc" (measured here: drawing one contour of a 1080p mask
point by point crashed the app). The same builds also lose references to True/False somewhere in the view
machinery ("bool_dealloc" at exit after a long painting run). `guard_none_refcount` detects the leak at
start-up and makes None, True and False as good as immortal, which is exactly what Python 3.12 does for
everyone (PEP 683). Once the bindings are fixed (or Python >= 3.12), the probe finds nothing and nothing is
changed.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import sys

log = logging.getLogger(__name__)

PROBE_CALLS = 64
HEADROOM = 1 << 40  # references added to None: ~10^12 leaked calls before it could matter
_state = {"checked": False, "guarded": False}


def none_refcount_leak_per_call() -> float:
    """How many references to None one None-returning Qt call loses (0.0 when the bindings are sound)."""
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(PROBE_CALLS):
        probe.setObjectName("vivim-probe")  # a void method
    return (before - sys.getrefcount(None)) / PROBE_CALLS


def guard_none_refcount() -> bool:
    """Detect the leak once per process and, on CPython < 3.12, add HEADROOM references to None. Returns True
    when the guard is in place."""
    if _state["checked"]:
        return _state["guarded"]
    _state["checked"] = True
    if platform.python_implementation() != "CPython" or sys.version_info >= (3, 12):
        return False  # None is immortal there
    leak = none_refcount_leak_per_call()
    if leak <= 0:
        return False
    for singleton in (None, True, False):
        refcount = ctypes.c_ssize_t.from_address(id(singleton))  # ob_refcnt: first field of every CPython object
        refcount.value += HEADROOM  # the effect of HEADROOM Py_IncRef calls, in one step
    import PySide6

    log.warning("PySide6 %s loses a reference to None per call on Python %s (%.0f per call measured); guarded: "
                "the reference counts of None, True and False raised by 2**40. Upgrade PySide6 or use Python >= 3.12 to remove this.",
                PySide6.__version__, platform.python_version(), leak)
    _state["guarded"] = True
    return True
