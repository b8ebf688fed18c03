"""Clinical commands of the main window (a mixin of `MainWindow`): calibrate from a drawn line, calipers, the
long axis on the timeline, brightness / contrast of the display, and the lesion size report.

Measurements are information, not a diagnosis, and never in millimetres without a calibration: the status bar
always says which calibration backs them, or "uncalibrated".
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox

from vivim_core.errors import VivimError

from ..document.report import write_report
from .calibration_tool import CalibrationDialog, line_length
from .measurement_text import calibration_summary, mm_per_pixel
from .report_dialog import ReportDialog, default_report_folder
from .window_level import WindowLevelDialog


class ClinicalCommands:
    """Needs: self.document, self.bridge, self.canvas, self.timeline, self.status, self.actions_by_id,
    self.options, self.recent, self.task, self.tell(), self.start_job()."""

    def init_clinical(self) -> None:
        a = self.actions_by_id
        self.window_level_dialog: WindowLevelDialog | None = None
        self.last_report = None
        a["clear_calibration"].triggered.connect(self.clear_calibration)
        a["toggle_calipers"].toggled.connect(self.canvas.set_calipers_visible)
        a["toggle_long_axis_curve"].toggled.connect(self.timeline.set_long_axis_shown)
        a["window_level"].triggered.connect(self.show_window_level)
        a["reset_window_level"].triggered.connect(self.canvas.display_window.reset)
        a["report"].triggered.connect(self.report_dialog)
        self.canvas.calibration_line_drawn.connect(self.on_calibration_line)
        self.canvas.display_window.changed.connect(self._show_display_window)
        self._show_calibration()

    def clinical_document_set(self) -> None:
        """A document was opened (or closed): follow its calibration."""
        if self.bridge is not None:
            self.bridge.calibration_changed.connect(self._on_calibration_changed)
        self._show_calibration()

    # calibration ---------------------------------------------------------------------------------------------
    def ask_calibration_length(self, pixels: float) -> float | None:
        """The length in mm of a line of `pixels`, from the user (None: cancelled, or no dialogs may open)."""
        if not self.options.interactive:
            return None
        drawn = self.document.user_calibration if self.document is not None else None
        dialog = CalibrationDialog(pixels, drawn.length_mm if drawn is not None else None, self)
        return dialog.length_mm() if dialog.exec() else None

    def on_calibration_line(self, start, end) -> None:
        try:
            length = self.ask_calibration_length(line_length(start, end))
            if length is not None:
                self.calibrate(start, end, length)
        finally:
            self.canvas.calibration_overlay.end_drawing()

    def calibrate(self, start, end, length_mm: float) -> bool:
        """Calibrate the video from a line over `length_mm` (saved in the workspace); False with a message when
        the line cannot give a calibration."""
        if self.document is None:
            return False
        try:
            calibration = self.document.set_user_calibration(start, end, length_mm, self.document.current_frame)
        except VivimError as exc:
            self.tell(str(exc), dialog=True, title="Calibration not set")
            return False
        self.tell(f"Calibrated: {mm_per_pixel(calibration)}, from the line you drew ({length_mm:g} mm over "
                  f"{line_length(start, end):.1f} px). Tools > Remove drawn calibration takes it back.")
        return True

    def clear_calibration(self) -> bool:
        if self.document is None:
            return False
        try:
            removed = self.document.clear_user_calibration()
        except VivimError as exc:
            self.tell(str(exc), dialog=True, title="Calibration not removed")
            return False
        short, _full = calibration_summary(self.document)
        self.tell(f"Removed the calibration you drew; now {short}." if removed else "No drawn calibration to remove.")
        return removed

    def _on_calibration_changed(self) -> None:
        self._show_calibration()
        self.canvas.refresh_calipers()
        self.timeline.long_axis.invalidate()
        self._refresh_frame_info()

    def _show_calibration(self) -> None:
        document = self.document
        self.status.show_calibration(*calibration_summary(document))
        self.canvas.show_calibration(document.user_calibration if document is not None else None)
        self.actions_by_id["clear_calibration"].setEnabled(document is not None and
                                                          document.user_calibration is not None)

    def calibrate_tool_chosen(self) -> None:
        self.tell("Calibrate: drag a line over a known length (the scanner's depth ruler is best: the longer the "
                  "line, the more precise), then type that length in mm.")

    # display window ------------------------------------------------------------------------------------------
    def show_window_level(self) -> None:
        if self.window_level_dialog is None:
            self.window_level_dialog = WindowLevelDialog(self.canvas.display_window, self.canvas.shown_frame_rgb,
                                                         self)
        self.window_level_dialog.show()
        self.window_level_dialog.raise_()

    def _show_display_window(self) -> None:
        window = self.canvas.display_window
        self.status.show_display_window("" if window.is_identity else
                                        f"W/L {window.level:.0f}/{window.width:.0f} (display only)")

    # report --------------------------------------------------------------------------------------------------
    def report_dialog(self) -> None:
        if self.document is None:
            return
        remembered = self.recent.settings.value("report_folder", "")
        default = default_report_folder(self.document, Path(remembered) if remembered else None)
        dialog = ReportDialog(self.document, default, self.task, self)
        if dialog.exec():
            folder, options = dialog.result_options()
            self.recent.settings.setValue("report_folder", str(folder.parent))
            self.report_to(folder, options)

    def report_to(self, folder: Path, options) -> bool:
        """Write the lesion size report of the open video into `folder` (worker thread), as `vivim-studio report`
        does; a message at the end says what was written where."""
        if self.document is None:
            return False
        self.canvas.finish_stroke()
        document = self.document

        def done(result) -> None:
            self.last_report = result
            frames = len(result.summary["frames_measured"])
            unreviewed = (" Unreviewed model proposals were measured (their status is in the table)."
                          if result.summary["includes_unreviewed_proposals"] else "")
            message = (f"Report written: {len(result.lesions)} lesion(s) measured on {frames} frame(s), in "
                       f"{result.folder} ({', '.join(p.name for p in result.files)}). Information, not a "
                       f"diagnosis.{unreviewed}")
            self.tell(message)
            if self.options.interactive:
                QMessageBox.information(self, "Report written", message)

        return self.start_job("Measuring lesions", lambda progress, cancel: write_report(
            document, folder, options, progress=progress), done)
