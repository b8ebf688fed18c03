"""The document's calibrations: what the video's file states, and a line the user drew over a known length,
kept in the workspace as `calibration.json` (validated on open like every workspace file).

    doc.calibrations                                  # [Calibration], the drawn line first, then the file's
    doc.set_user_calibration((10, 40), (10, 440), 40.0, frame=3)
    doc.calibration_for(mask)                         # the one that backs this lesion's millimetres, or None
    doc.clear_user_calibration()

Precedence: a calibration the user gives (a drawn line, or `--pixel-spacing` passed as `override`) applies to
the whole image and wins over the file's; otherwise the file's are chosen per lesion (`choose_calibration`:
the ultrasound region that holds the lesion, else Pixel Spacing). No calibration: the lesion is measured in
pixels, and says "uncalibrated".
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write
from .calibration import Calibration, CalibrationError, UserCalibration, choose_calibration
from .exceptions import WorkspaceError

log = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
CALIBRATION_FORMAT = "vivim-studio-calibration"


def read_user_calibration(folder: Path) -> UserCalibration | None:
    """The drawn calibration kept in the workspace `folder`, None when there is none; WorkspaceError naming the
    file and the problem when it is not one."""
    from .workspace_format import read_json

    path = Path(folder) / CALIBRATION_FILE
    if not os.path.lexists(path):
        return None
    if path.is_symlink() or not path.is_file():
        raise WorkspaceError(f"{path}: is not a regular file; remove it (it holds only the calibration line you "
                             f"drew, which you can draw again)")
    data = read_json(path)
    try:
        if not isinstance(data, dict) or data.get("format") != CALIBRATION_FORMAT or data.get("format_version") != 1:
            raise CalibrationError(f"not a calibration file of this Vivim Studio (\"format\" {CALIBRATION_FORMAT!r}, "
                                   f"\"format_version\" 1 expected)")
        return UserCalibration.from_json(data.get("line"))
    except CalibrationError as exc:
        raise WorkspaceError(f"{path}: {exc}; remove or fix this file (it holds only the calibration line you drew, "
                             f"which you can draw again)") from None


def _source_calibrations(document) -> list[Calibration]:
    """The calibrations of the video's file; for a video that is not at hand, those its workspace recorded
    (each checked again, an unusable one skipped)."""
    found = getattr(document.source, "calibrations", None)
    if found is not None:
        return list(found)
    recorded = ((document.workspace.source_info.get("metadata") or {}).get("calibrations")
                if document.workspace is not None else None)
    calibrations = []
    for item in recorded if isinstance(recorded, list) else []:
        try:
            calibrations.append(Calibration.from_json(item))
        except CalibrationError as exc:
            log.warning("%s: a recorded calibration is ignored (%s)", document.workspace.folder, exc)
    return calibrations


class CalibrationMixin:
    """Calibration methods of `VideoDocument` (see the module docstring)."""

    _user_calibration: UserCalibration | None = None

    def _load_calibration(self, workspace) -> None:
        self._user_calibration = read_user_calibration(workspace.folder)

    @property
    def user_calibration(self) -> UserCalibration | None:
        """The line the user drew (its ends, length, frame and calibration), or None."""
        return self._user_calibration

    @property
    def calibrations(self) -> list[Calibration]:
        """Every calibration that applies to this video, each naming its source: the drawn line first, then the
        file's (ultrasound regions, Pixel Spacing). Empty: the video is uncalibrated."""
        drawn = [self._user_calibration.calibration] if self._user_calibration is not None else []
        return [*drawn, *_source_calibrations(self)]

    def calibration_for(self, mask: np.ndarray, override: Calibration | None = None) -> Calibration | None:
        """The calibration that backs the millimetres of the lesion `mask` (bool (H, W)): `override` (e.g.
        --pixel-spacing), else the drawn line, else the file's that applies to the lesion (`choose_calibration`);
        None: uncalibrated."""
        if override is not None:
            return override
        if self._user_calibration is not None:
            return self._user_calibration.calibration
        return choose_calibration(_source_calibrations(self), mask)

    def set_user_calibration(self, start: tuple[float, float], end: tuple[float, float], length_mm: float,
                             frame: int | None = None) -> Calibration:
        """Calibrate from a line drawn from `start` to `end` ((x, y) pixels) over `length_mm` millimetres (e.g.
        the scanner's depth ruler), saved in the workspace. CalibrationError for a line that cannot give one."""
        self.check_writable()
        if frame is not None:
            frame = self.source.check_index(frame)
        height, width = self.frame_size
        for point in (start, end):
            if not (0 <= point[0] <= width and 0 <= point[1] <= height):
                raise CalibrationError(f"the calibration line's end {tuple(point)} lies outside the "
                                       f"{width}x{height} image")
        drawn = UserCalibration.from_line(start, end, length_mm, frame)
        self._write_calibration(drawn)
        self._user_calibration = drawn
        self.events.calibration_changed.emit()
        return drawn.calibration

    def clear_user_calibration(self) -> bool:
        """Forget the drawn line (the file's calibrations stay); False when there was none."""
        self.check_writable()
        if self._user_calibration is None:
            return False
        self._write_calibration(None)
        self._user_calibration = None
        self.events.calibration_changed.emit()
        return True

    def _write_calibration(self, drawn: UserCalibration | None) -> None:
        if self.workspace is None:
            return  # an in-memory document keeps it in memory
        from .workspace_format import dump_json

        path = self.workspace.folder / CALIBRATION_FILE
        try:
            if drawn is None:
                if os.path.lexists(path):
                    os.unlink(path)
            else:
                data: dict[str, Any] = {"format": CALIBRATION_FORMAT, "format_version": 1, "line": drawn.to_json(),
                                        "mm_per_pixel": drawn.calibration.row_mm,
                                        "source": drawn.calibration.source}
                atomic_write(path, dump_json(data))
        except OSError as exc:
            raise WorkspaceError(f"{path}: could not save the calibration ({exc.strerror or exc}); free disk space "
                                 f"or fix permissions, then draw it again") from None
