"""`vivim-studio [VIDEO|FOLDER|DICOM] [--checkpoint CKPT] [--workspace DIR] [--device auto|cpu|cuda]
[--demo [--task thyroid|polyp]] [--screenshot FILE]`: the GUI entry point (`vivim_studio.cli` routes here).

Arguments are parsed before Qt is imported, so `--help` is instant. `--screenshot FILE` is the headless smoke
mode for tests and docs: it opens what was asked, waits until the view has settled (after the proposals when
they were started), saves a PNG of the main window and exits (0 on success, 1 if opening failed, 3 on timeout).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..arguments import PROG, build_gui_parser
from .display import EXIT_NO_DISPLAY, LIBRARIES_HELP, display_problem, exit_if_qt_platform_fails

SCREENSHOT_TIMEOUT_S = 900
SETTLE_MS = 400  # after the last job: lets coalesced timeline/status refreshes run and the window repaint


def run_gui(argv: list[str] | None = None, **options) -> int:
    """The app. `options`: extra `StudioOptions` fields for test drivers and benchmarks that start the real app
    (e.g. small inference sizes, interactive=False); the command line never sets them."""
    parser = build_gui_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.demo and args.video is not None:
        parser.error("give a video or --demo, not both")
    problem = display_problem()
    if problem is not None:
        if args.screenshot is None:
            print(problem, file=sys.stderr)
            return EXIT_NO_DISPLAY
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a screenshot needs no screen
    try:
        import PySide6.QtWidgets  # noqa: F401  (loads Qt's system libraries)
    except ImportError as exc:
        print(f"{PROG}: error: Qt cannot load: {exc}\n{LIBRARIES_HELP}", file=sys.stderr)
        return EXIT_NO_DISPLAY
    return _run(args, options)


def _run(args: argparse.Namespace, overrides: dict | None = None) -> int:
    import pyqtgraph as pg
    from PySide6.QtCore import QStandardPaths, QTimer
    from PySide6.QtWidgets import QApplication

    from . import error_reporting
    from .compat import guard_none_refcount
    from .main_window import MainWindow, StudioOptions
    from .theme import apply_dark_theme

    guard_none_refcount()
    app = QApplication.instance()
    if app is None:
        with exit_if_qt_platform_fails():
            app = QApplication(sys.argv[:1])
    app.setOrganizationName("Vivim")
    app.setApplicationName("Vivim Studio")
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)
    apply_dark_theme(app)
    overrides = dict(overrides or {})
    interactive = overrides.pop("interactive", args.screenshot is None)
    error_reporting.setup_logging()
    error_reporting.install_excepthook()
    error_reporting.set_interactive(interactive)
    task = args.task or ("thyroid" if args.demo else None)  # None: the task chosen last time (Model > Task)
    options = StudioOptions(checkpoint=args.checkpoint, device=args.device, task=task, interactive=interactive,
                            **overrides)
    window = MainWindow(options)
    window.show()
    path, workspace = args.video, args.workspace
    if args.demo:
        from ..services.demo import demo_video

        cache = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.CacheLocation)
                     or Path.home() / ".cache" / "vivim-studio")
        try:
            path = demo_video(task, cache / "demo")
        except Exception as exc:  # e.g. a read-only cache folder
            window.fail("Could not create the demo video", exc)
            path = None
        if window.checkpoint_path is not None:
            window.document_opened.connect(window.propose)  # the demo starts with proposals
        else:
            window.tell("Demo without proposals: no model checkpoint is installed. Draw masks by hand, or choose a "
                        "checkpoint in Model > Choose checkpoint...")
    outcome = {"open_failed": path is None and args.demo, "opening": path is not None}
    if path is not None:
        if not window.open_path(path, workspace):
            outcome["open_failed"] = True
        window.runner.finished.connect(
            lambda title: outcome.update(open_failed=window.document is None) if title.startswith("Opening") else None)
    if args.screenshot is not None:
        window.screenshot_taker = _ScreenshotWhenSettled(window, args.screenshot, outcome, app, QTimer)  # keep alive
    code = int(app.exec())
    _tear_down(app, window)
    return code


def _tear_down(app, window) -> None:
    """Destroy the window and its scene while Qt still runs: left to the interpreter's exit, Qt objects (the
    pyqtgraph scenes above all) are destroyed in no set order, which can crash the process after its work is
    done and saved."""
    import gc

    from PySide6.QtCore import QCoreApplication, QEvent

    window.screenshot_taker = None
    window.close()
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    app.processEvents()
    del window
    gc.collect()


class _ScreenshotWhenSettled:
    """Polls (every 100 ms, on the GUI thread) until no job runs and nothing is pending, then saves the window."""

    def __init__(self, window, file: Path, outcome: dict, app, QTimer):
        self.window, self.file, self.outcome, self.app = window, Path(file), outcome, app
        self.quiet_polls = 0
        self.elapsed_ms = 0
        self.timer = QTimer(window)
        self.timer.setInterval(100)
        self.timer.timeout.connect(self._poll)
        self.timer.start()

    def _poll(self) -> None:
        self.elapsed_ms += 100
        window = self.window
        shown = window.document is not None or self.outcome["open_failed"] or not self.outcome["opening"]
        probing = window.device_probe is not None and window.device_probe.busy  # the status bar's device
        assisting = window.prompt_queue.pending or window.learning_runner.busy  # clicks, a learning round
        settled = not window.runner.busy and not probing and not assisting and shown
        self.quiet_polls = self.quiet_polls + 1 if settled else 0
        timed_out = self.elapsed_ms >= SCREENSHOT_TIMEOUT_S * 1000
        if self.quiet_polls * 100 >= SETTLE_MS or timed_out:
            self.timer.stop()
            self.file.parent.mkdir(parents=True, exist_ok=True)
            saved = self.window.grab().save(str(self.file))
            code = 3 if timed_out else 1 if (self.outcome["open_failed"] or not saved) else 0
            print(f"vivim-studio: screenshot {'saved to ' + str(self.file) if saved else 'NOT saved'}"
                  + ("; " + self.window.messages[-1] if self.window.messages else ""), file=sys.stderr)
            self.window.close()
            self.app.exit(code)
