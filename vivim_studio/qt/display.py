"""Can the GUI open a window here? Asked before Qt starts: without a display Qt aborts the process (exit 134
after a platform-plugin message that says nothing about what to do). The Studio stops first, with exit code 2
and a message that names the way out.

    problem = display_problem(os.environ, sys.platform)     # None, or the message (Linux without a display)
    with exit_if_qt_platform_fails(): app = QApplication(...)  # a plugin that cannot start: message, exit 2

Library names are Debian/Ubuntu packages; the PySide6 wheel brings Qt itself, the system brings these.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from ..arguments import PROG

EXIT_NO_DISPLAY = 2
QT_LIBRARIES = "libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0 libx11-6"
X11_LIBRARIES = ("libxkbcommon-x11-0 libx11-xcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 "
                 "libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xkb1")
HEADLESS = f"QT_QPA_PLATFORM=offscreen {PROG} VIDEO --screenshot FILE"
LIBRARIES_HELP = (f"  * If Qt's system libraries are missing: apt-get install {QT_LIBRARIES}; for X11 windows "
                  f"(a desktop, ssh -X, xvfb-run) also {X11_LIBRARIES}.")


def display_problem(environ: Mapping[str, str] = os.environ, platform: str = sys.platform) -> str | None:
    """The message to stop with when Qt would find no display: Linux, neither DISPLAY nor WAYLAND_DISPLAY set and
    no Qt platform chosen (QT_QPA_PLATFORM). None when a window may open (or Qt was told where to draw)."""
    if not platform.startswith("linux") or environ.get("QT_QPA_PLATFORM"):
        return None
    if environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return None
    return "\n".join([
        f"{PROG}: error: no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set).",
        f"  * Start {PROG} on a desktop (or over ssh -X, which forwards the window).",
        f"  * Headless, to check the setup or to save a picture of the window: {HEADLESS}",
        f"    (--screenshot renders off screen by itself when there is no display).",
        f"  * The headless commands need no display: {PROG} propose --help, {PROG} export --help.",
        LIBRARIES_HELP,
    ])


def qt_platform_name(environ: Mapping[str, str] = os.environ) -> str:
    """The platform plugin Qt tries on Linux: QT_QPA_PLATFORM, else wayland on a Wayland desktop, else xcb."""
    return environ.get("QT_QPA_PLATFORM") or ("wayland" if environ.get("WAYLAND_DISPLAY") else "xcb")


def platform_failure_message(platform: str, qt_said: list[str]) -> str:
    """What to print when Qt could not start its platform plugin `platform`; `qt_said`: Qt's own messages."""
    said = [line.strip() for message in qt_said for line in message.splitlines() if line.strip()]
    unreachable = any("could not connect to display" in line for line in said)
    why = ("the display cannot be reached" if unreachable else "its plugin or the system libraries it needs "
           "could not be loaded")
    return "\n".join([
        f"{PROG}: error: Qt could not start its '{platform}' platform ({why}), so no window can open.",
        *(f"  Qt: {line}" for line in said[:6]),
        f"  * Check DISPLAY ({os.environ.get('DISPLAY') or 'not set'}) or WAYLAND_DISPLAY, or start {PROG} on a "
        f"desktop.",
        LIBRARIES_HELP,
        f"  * Headless: {HEADLESS}",
    ])


@contextmanager
def exit_if_qt_platform_fails() -> Iterator[None]:
    """Wrap the QApplication's construction: when Qt cannot start its platform plugin it reports a fatal message
    and would abort; this prints `platform_failure_message` instead and exits with code 2. Qt's messages are
    held back meanwhile and shown only then (a window that opens prints nothing)."""
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    held: list[str] = []

    def handler(kind, _context, message: str) -> None:
        held.append(message)
        if kind == QtMsgType.QtFatalMsg:
            sys.stderr.write(platform_failure_message(qt_platform_name(), held) + "\n")
            sys.stderr.flush()
            os._exit(EXIT_NO_DISPLAY)  # Qt aborts right after this handler; nothing is open or unsaved yet

    qInstallMessageHandler(handler)
    try:
        yield
    finally:
        qInstallMessageHandler(None)
        for message in held:  # a window opened: Qt's warnings go where they always go
            sys.stderr.write(message + "\n")
