"""Opening videos (a mixin of `MainWindow`): File > Open, Open folder, recent files, drag and drop.

Opening runs in the worker thread (hashing the video's identity, reading a long workspace); the document
model resumes the workspace (`<video>.vivim` beside the video, or the one given), refusing another video's.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from vivim_core.errors import VivimError

from ..document import VideoDocument
from ..document.sources import SOURCE_HELP
from ..document.workspace_format import WORKSPACE_FILE

VIDEO_FILTER = "Videos and DICOM (*.mp4 *.avi *.mov *.mkv *.m4v *.wmv *.mpg *.mpeg *.dcm *.dicom);;All files (*)"


class OpeningCommands:
    """Needs: self.runner, self.recent, self.set_document(), self.close_document(), self.tell(), self.fail()."""

    def init_opening(self) -> None:
        self.actions_by_id["open"].triggered.connect(self.open_file_dialog)
        self.actions_by_id["open_folder"].triggered.connect(self.open_folder_dialog)

    def open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video or DICOM cine", self.recent.last_folder(),
                                              VIDEO_FILTER)
        if path:
            self.open_path(Path(path))

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a folder of frames, a VTUS case or a workspace",
                                                self.recent.last_folder())
        if path:
            self.open_path(Path(path))

    def open_path(self, path: Path | str, workspace: Path | str | None = None) -> bool:
        """Open a video, frame folder, VTUS case, DICOM cine or workspace folder (`<video>.vivim`), in the
        worker thread; the current document is closed first (it is already saved)."""
        path = Path(path)
        if self.runner.busy:
            self.tell(f"Cannot open {path.name} while '{self.runner.title}' runs: wait for it or cancel it (Esc).",
                      dialog=True)
            return False
        self.close_document()

        def job(progress, cancel) -> VideoDocument:
            if path.is_dir() and (path / WORKSPACE_FILE).is_file():
                return VideoDocument.open_workspace(path)
            return VideoDocument.open(path, workspace)

        return self.runner.start(f"Opening {path.name}", job, on_done=lambda doc: self._opened(doc, path),
                                 on_error=lambda exc, details: self._open_failed(path, exc, details))

    def _opened(self, document: VideoDocument, path: Path) -> None:
        if self._closing:  # the window closed while the video was opening
            document.close()
            return
        self.set_document(document)
        self.recent.add(path)
        self.rebuild_recent_menu()
        for warning in document.warnings:
            self.tell(warning)
        self.document_opened.emit()

    def _open_failed(self, path: Path, error: BaseException, details: str) -> None:
        self.recent.remove_if_missing(path)
        self.rebuild_recent_menu()
        if not isinstance(error, VivimError) and isinstance(error, OSError):
            error = VivimError(f"{path}: cannot be read ({error}); check that it exists and that you may "
                               f"read it. Vivim Studio opens {SOURCE_HELP}.")
        self.fail(f"Could not open {path.name}", error, details)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_path(Path(urls[0].toLocalFile()))
