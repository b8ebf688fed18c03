"""Commands on lesions: choose the active lesion (keys 1-9, New lesion), merge, split and relabel lesions (the
lesion panel's buttons and menus; each one undo step, Ctrl+Z undoes it), and File > Import masks... (the code
of `vivim-studio import`, in the worker). Mixed into `MainWindow`."""

from __future__ import annotations

from pathlib import Path

from vivim_core.errors import VivimError

from ..document.mask_import import import_masks
from .import_dialog import ImportMasksDialog


class LesionCommands:
    def init_lesions(self) -> None:
        a = self.actions_by_id
        for k in range(1, 10):
            a[f"lesion_{k}"].triggered.connect(lambda _checked=False, k=k: self.select_lesion(k))
        a["new_lesion"].triggered.connect(self.new_lesion)
        a["split_lesion"].triggered.connect(lambda: self.split_lesion(self.document.active_lesion)
                                            if self.document is not None else None)
        a["import_masks"].triggered.connect(self.import_masks_dialog)
        panel = self.panel.lesion_panel
        panel.lesion_chosen.connect(self.select_lesion)
        panel.merge_requested.connect(self.merge_lesion)
        panel.relabel_requested.connect(self.relabel_lesion)
        self._show_active_lesion()

    def lesions_document_set(self) -> None:
        """A document was opened (or closed): follow its lesions."""
        if self.bridge is not None:
            self.bridge.active_lesion_changed.connect(self._on_active_lesion_changed)
            self.bridge.lesions_changed.connect(self._on_lesions_changed)
        self._show_active_lesion()

    def _on_active_lesion_changed(self, _lesion: int) -> None:
        self.canvas.refresh_mask()
        self._show_active_lesion()
        self._refresh_frame_info()

    def _on_lesions_changed(self, index: int) -> None:
        self.timeline.schedule_refresh()
        self._refresh_frame_info(index)

    def _show_active_lesion(self) -> None:
        document = self.document
        active = document.active_lesion if document is not None else None
        self.status.show_active_lesion(active)
        for k in range(1, 10):
            self.actions_by_id[f"lesion_{k}"].setChecked(k == active)

    # choosing --------------------------------------------------------------------------------------------
    def select_lesion(self, lesion: int) -> None:
        """Edits act on lesion `lesion` from now on (a stroke in progress is committed to the previous one)."""
        if self.document is None:
            return
        self.canvas.finish_stroke()
        try:
            self.document.active_lesion = lesion
        except VivimError as exc:
            self.tell(str(exc), dialog=True)
        self._show_active_lesion()

    def new_lesion(self) -> None:
        if self.document is None:
            return
        try:
            lesion = self.document.next_lesion_id()
        except VivimError as exc:
            self.tell(str(exc), dialog=True)
            return
        self.select_lesion(lesion)
        self.tell(f"New lesion {lesion}: draw it with the brush, lasso or Prompt tool.")

    # identities --------------------------------------------------------------------------------------------
    def merge_lesion(self, source: int, target: int, this_frame_only: bool = False) -> bool:
        """Lesion `source` becomes part of lesion `target` (on the current frame only, or on every frame)."""
        return self._identity_operation("merge_lesions", f"Merged lesion {source} into lesion {target}", source,
                                        target, this_frame_only)

    def relabel_lesion(self, source: int, target: int, this_frame_only: bool = False) -> bool:
        """Lesion `source` takes the id `target` (two lesions present exchange ids)."""
        return self._identity_operation("relabel_lesion", f"Lesion {source} is now lesion {target}", source, target,
                                        this_frame_only)

    def _identity_operation(self, method: str, done_text: str, source: int, target: int,
                            this_frame_only: bool) -> bool:
        document = self.document
        if document is None:
            return False
        self.canvas.finish_stroke()
        frames = document.current_frame if this_frame_only else None
        where = f"on frame {document.current_frame + 1}" if this_frame_only else "on {n} frame(s)"

        def done(changed: list[int]) -> None:
            if document.active_lesion == source and not document.lesion_frames(source):
                document.active_lesion = target  # the lesion edited so far is now `target`
            self.tell(f"{done_text} {where.format(n=len(changed))} (Ctrl+Z undoes it).")

        def run(_progress=None, _cancel=None) -> list[int]:
            return getattr(document, method)(source, target, frames)

        if this_frame_only:  # one frame: at once, on the GUI thread
            try:
                done(run())
            except VivimError as exc:
                self.fail("Lesion not changed", exc)
                return False
            return True
        return self.start_job("Changing lesion ids", run, done)

    def split_lesion(self, lesion: int) -> bool:
        """On the current frame, each separate piece of `lesion` but the largest becomes a new lesion."""
        document = self.document
        if document is None:
            return False
        self.canvas.finish_stroke()
        try:
            new_ids = document.split_lesion_pieces(document.current_frame, lesion)
        except VivimError as exc:
            self.fail("Lesion not split", exc)
            return False
        self.tell(f"Split lesion {lesion}: its other pieces are now lesion(s) {', '.join(map(str, new_ids))} "
                  f"(Ctrl+Z undoes it).")
        return True

    # import ------------------------------------------------------------------------------------------------
    def import_masks_dialog(self) -> None:
        if self.document is None or not self.options.interactive:
            return
        remembered = self.recent.settings.value("import_masks_folder", "")
        dialog = ImportMasksDialog(Path(remembered) if remembered else self.document.source.path.parent, self)
        if dialog.exec():
            path, status, replace = dialog.choices()
            self.recent.settings.setValue("import_masks_folder", str(path.parent if path.is_file() else path))
            self.import_masks_from(path, status, replace)

    def import_masks_from(self, path: Path | str, status: str = "edited", replace_reviewed: bool = False) -> bool:
        """Run `import_masks` (the `import` verb's code) in the worker; errors name the file and what to do."""
        document = self.document
        if document is None:
            return False
        self.canvas.finish_stroke()
        path = Path(path)

        def done(result) -> None:
            kept = (f"; {len(result.kept)} frame(s) you edited or accepted were kept as they are"
                    if result.kept else "")
            lesions = ", ".join(map(str, result.lesion_ids)) or "none"
            self.tell(f"Imported {len(result.imported)} frame(s) from {path.name} as {status} (lesions {lesions})"
                      f"{kept}. Edit > Undo on any of them undoes the import.")

        return self.start_job("Importing masks", lambda progress, cancel: import_masks(
            document, path, status, replace_reviewed, progress), done)
