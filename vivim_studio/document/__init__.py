"""The Studio's document model, Qt-free: video sources, lesion label maps, editing with undo, review status,
workspace (atomic autosave), import and export. The GUI (`vivim_studio.qt`) renders it and subscribes to its
events.

    from vivim_studio.document import VideoDocument, FrameStatus, export_document
"""

from .document import VideoDocument
from .editing import Stroke
from .exceptions import EditError, ExportError, ImportMasksError, SourceError, WorkspaceError
from .events import DocumentEvents, Signal
from .sources import (DicomCineSource, FrameFolderSource, MissingSource, SourceFrames, SourceIdentity,
                      VideoFileSource, VideoSource, open_source)
from .status import FrameRecord, FrameStatus, LesionRecord
from .workspace import Workspace

__all__ = ["VideoDocument", "Stroke", "FrameStatus", "FrameRecord", "LesionRecord", "DocumentEvents", "Signal",
           "Workspace", "ImportMasksError", "open_source", "VideoSource", "VideoFileSource", "FrameFolderSource",
           "DicomCineSource", "MissingSource", "SourceFrames", "SourceIdentity", "SourceError", "WorkspaceError",
           "ExportError", "EditError", "export_document", "ExportOptions", "ExportResult", "ExportCancelled"]


def __getattr__(name: str):
    if name in ("export_document", "ExportOptions", "ExportResult", "ExportCancelled"):  # export pulls in nibabel: load on use
        from . import export
        return getattr(export, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
