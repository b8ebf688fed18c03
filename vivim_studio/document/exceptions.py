"""Errors of the document model that are the user's to fix: each message says which file, what is wrong and
what to do. All subclass `vivim_core.errors.VivimError`, so the CLIs print them without a traceback and the GUI
shows them in a dialog."""

from __future__ import annotations

from vivim_core.errors import VivimError


class SourceError(VivimError, ValueError):
    """A video, frame folder or DICOM file that cannot be opened or decoded."""


class WorkspaceError(VivimError, ValueError):
    """A workspace folder that cannot be used: another video's, in use, unreadable, or edited into nonsense.
    Raised before anything is written, so the workspace on disk is left exactly as it was."""


class ExportError(VivimError, ValueError):
    """An export that could not be written or did not read back identically (nothing half-written is left)."""


class EditError(VivimError, ValueError):
    """An editing operation that cannot apply to this frame (e.g. re-threshold without a proposal)."""


class ImportMasksError(VivimError, ValueError):
    """Masks to import that cannot be used (wrong size, frame number or values); nothing was imported."""
