"""Recently opened videos, kept in QSettings (per user), newest first."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

MAX_RECENT = 10
KEY = "recent_files"


class RecentFiles:
    def __init__(self, settings: QSettings):
        self.settings = settings

    def paths(self) -> list[Path]:
        value = self.settings.value(KEY, [])
        if isinstance(value, str):  # QSettings returns a lone string for a one-element list (ini format)
            value = [value]
        return [Path(v) for v in (value or []) if v]

    def add(self, path: Path) -> None:
        path = Path(path).resolve()
        paths = [path] + [p for p in self.paths() if p != path]
        self._store(paths[:MAX_RECENT])

    def remove_if_missing(self, path: Path) -> None:
        path = Path(path).resolve()
        if not path.exists():
            self._store([p for p in self.paths() if p != path])

    def clear(self) -> None:
        self._store([])

    def last_folder(self) -> str:
        paths = self.paths()
        return str(paths[0].parent) if paths else str(Path.home())

    def _store(self, paths: list[Path]) -> None:
        self.settings.setValue(KEY, [str(p) for p in paths])
        self.settings.sync()
