"""What the user sees when something goes wrong: a dialog saying what happened and what to do; never a traceback.

* Errors meant for the user (`VivimError`: bad file, wrong workspace, no checkpoint...) carry their own
  message (which file, what is wrong, what to do); it is shown as it is.
* Anything else is a bug: its traceback goes to the log file, and the dialog says that the work is saved
  (the document saves every change before returning) and where the log is, for a bug report.

`install_excepthook` routes uncaught exceptions (Qt slots included) through the same path. Without an
interactive user (--screenshot, tests) nothing modal is shown: the message goes to the log and to stderr.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
from pathlib import Path

from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from vivim_core.errors import VivimError

log = logging.getLogger("vivim_studio")

_state = {"log_file": None, "interactive": True, "showing": False}


def default_log_dir() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    return Path(base or Path.home() / ".vivim-studio") / "logs"


def setup_logging(log_dir: Path | None = None) -> Path | None:
    """Log to a rotating file (and warnings to stderr). Returns the file, or None if it cannot be created."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)
    root.addHandler(console)
    try:
        folder = log_dir or default_log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "vivim-studio.log"
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=2 * 2**20, backupCount=3, encoding="utf-8")
    except OSError as exc:
        log.warning("cannot write the log file (%s); logging to the terminal only", exc)
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root.addHandler(handler)
    _state["log_file"] = path
    return path


def log_file() -> Path | None:
    return _state["log_file"]


def set_interactive(interactive: bool) -> None:
    _state["interactive"] = interactive


def describe(error: BaseException) -> tuple[str, str]:
    """(what happened, what to do) for a dialog."""
    if isinstance(error, VivimError):
        return str(error), ""
    where = f" The details are in {_state['log_file']}." if _state["log_file"] else ""
    return (f"An unexpected error occurred: {type(error).__name__}: {error}",
            "Your work is saved: every change is written to the workspace as you make it. Try again; if it keeps "
            f"happening, please report it with the log file.{where}")


def show_error(parent: QWidget | None, title: str, error: BaseException | str, hint: str = "",
               interactive: bool | None = None) -> None:
    """A warning dialog (or, non-interactively, a log line). interactive=None: the app-wide setting."""
    if isinstance(error, BaseException):
        text, advice = describe(error)
    else:
        text, advice = error, ""
    advice = hint or advice
    log.warning("%s: %s %s", title, text, advice)
    interactive = _state["interactive"] if interactive is None else interactive
    if not interactive or QApplication.instance() is None or _state["showing"]:
        return
    _state["showing"] = True  # one dialog at a time: an error while the box is open is only logged
    try:
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, parent)
        if advice:
            box.setInformativeText(advice)
        box.exec()
    finally:
        _state["showing"] = False


def _excepthook(exc_type, exc, tb) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        QApplication.quit()
        return
    if not isinstance(exc, VivimError):
        log.error("uncaught exception", exc_info=(exc_type, exc, tb))
    show_error(QApplication.activeWindow(), "Vivim Studio", exc)


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    log.error("uncaught exception in thread %s", args.thread.name if args.thread else "?",
              exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def install_excepthook() -> None:
    """Route uncaught exceptions to the log file and a friendly dialog instead of a traceback on stderr."""
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook
