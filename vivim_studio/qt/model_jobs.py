"""Model and file jobs of the main window (a mixin of `MainWindow`): propose masks, re-threshold, propagate,
export, fine-tune, choose the checkpoint. Each runs in the window's `JobRunner` (a worker thread) and writes
into the document, which is thread-safe; the views follow through the document's events (queued signals).

Which model: the checkpoint the user chose (Model > Choose checkpoint..., --checkpoint) if they chose one, else
the model adapted to the open video in its workspace (by learning rounds or fine-tuning) when it has one, else
the bundled default (`InferenceService.for_document`). Adapting a chosen checkpoint to the video (a learning
round, a fine-tune) makes the adapted model the one in use from then on.
"""

from __future__ import annotations

import datetime as _dt
import html
from pathlib import Path

from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import QFileDialog, QMessageBox

from ..document.export import export_document
from ..document.export_targets import default_export_folder, safe_video_id
from ..services import (ENV_VARIABLE, CheckpointNotFound, InferenceService, checkpoint_summary,
                        find_default_checkpoint, is_vivim_checkpoint)
from .dialogs import ExportDialog, FinetuneDialog

TASKS = {"thyroid": "thyroid ultrasound", "polyp": "polyp endoscopy"}
HOW_TO_GET_A_CHECKPOINT = (
    "Choose one with Model > Choose checkpoint... (a Vivim .safetensors file), start Vivim Studio with "
    f"--checkpoint PATH, or set ${ENV_VARIABLE}. To make one, train on data in the VTUS layout: "
    "`vivim-core train --data DATA --out runs/mine` gives runs/mine/best.safetensors. Installed builds bundle "
    "a default checkpoint in resources/. Meanwhile you can draw, review and export masks by hand.")


class ModelJobs:
    """Needs: self.document, self.runner, self.options, self.status, self.banner, self.panel, self.tell()."""

    def init_model(self) -> None:
        a = self.actions_by_id
        a["propose"].triggered.connect(self.propose)
        a["cancel_job"].triggered.connect(self.cancel_job)
        a["choose_checkpoint"].triggered.connect(self.choose_checkpoint_dialog)
        a["finetune"].triggered.connect(self.finetune_dialog)
        a["propagate"].triggered.connect(self.propagate)
        a["export"].triggered.connect(self.export_dialog)
        self.panel.threshold_released.connect(self.apply_threshold)
        self.device_found.connect(self.status.set_device)
        self._service: InferenceService | None = None
        self.device_probe = None  # the JobRunner finding the device, once started
        self.checkpoint_path: Path | None = None
        self.checkpoint_is_default = False
        self.checkpoint_explicit = False  # chosen by the user: used even where a workspace has an adapted model
        self._checkpoint_label: tuple[str, str] = ("", "")
        self.task = self.options.task or str(self.recent.settings.value("task", "thyroid"))
        self.task = self.task if self.task in TASKS else "thyroid"
        a[f"task_{self.task}"].setChecked(True)
        for task in TASKS:
            a[f"task_{task}"].triggered.connect(lambda _checked=False, t=task: self.set_task(t))
        if self.options.checkpoint is not None:
            self.set_checkpoint(self.options.checkpoint)
        else:
            self._use_default_checkpoint()
        if self.options.probe_device and self.checkpoint_path is not None:
            self.probe_device()

    # checkpoint --------------------------------------------------------------------------------------
    def set_task(self, task: str) -> None:
        """Thyroid ultrasound or polyp endoscopy: picks the bundled default checkpoint (unless the user chose one)."""
        self.task = task
        self.actions_by_id[f"task_{task}"].setChecked(True)
        self.recent.settings.setValue("task", task)
        if self.checkpoint_path is None or self.checkpoint_is_default:
            self._use_default_checkpoint()

    def _use_default_checkpoint(self) -> None:
        try:
            path = find_default_checkpoint(self.task)
        except CheckpointNotFound as exc:
            self.checkpoint_path, self._service = None, None
            self._show_no_checkpoint_banner(str(exc))
            self.reset_assist()
            return
        if self.set_checkpoint(path, default=True):
            self.tell(f"Using the bundled {TASKS[self.task]} checkpoint {path.name} (Model > Choose checkpoint... to "
                      f"use another).")

    def set_checkpoint(self, path: Path | str, default: bool = False, label: str | None = None) -> bool:
        path = Path(path)
        if not path.is_file() or not is_vivim_checkpoint(path):
            problem = "not found" if not path.is_file() else "not a Vivim checkpoint (.safetensors made by vivim-core)"
            self.tell(f"{path}: {problem}.", dialog=True, title="Cannot use this checkpoint",
                      hint=HOW_TO_GET_A_CHECKPOINT)
            if self.checkpoint_path is None:
                self._show_no_checkpoint_banner(f"{path}: {problem}")
            return False
        self.checkpoint_path, self._service, self.checkpoint_is_default = path, None, default
        self.checkpoint_explicit = not default
        self.banner.setVisible(False)
        self._checkpoint_label = (label or path.stem + (" (bundled default)" if default else ""),
                                  checkpoint_summary(path))
        self.status.set_checkpoint(*self._checkpoint_label)
        self.reset_assist()
        return True

    def checkpoint_label(self) -> tuple[str, str]:
        """(name, tooltip) of the checkpoint set (chosen or bundled)."""
        return self._checkpoint_label

    def _show_no_checkpoint_banner(self, reason: str) -> None:
        # word joiners: the option stays whole on one line ("--" and "checkpoint" would otherwise part)
        advice = html.escape(HOW_TO_GET_A_CHECKPOINT).replace("--checkpoint", "-\u2060-\u2060checkpoint")
        self.banner.setText("<b>No model checkpoint: masks cannot be proposed.</b> " + advice)
        self.banner.setToolTip(reason)
        self.banner.setVisible(True)
        self.status.set_checkpoint(None)

    def choose_checkpoint_dialog(self) -> None:
        folder = str(self.checkpoint_path.parent) if self.checkpoint_path else self.recent.last_folder()
        path, _ = QFileDialog.getOpenFileName(self, "Choose a Vivim checkpoint", folder,
                                              "Vivim checkpoints (*.safetensors)")
        if path:
            self.set_checkpoint(Path(path))

    def no_checkpoint(self) -> None:
        self.tell("Masks cannot be proposed: no Vivim model checkpoint is configured.", title="No model checkpoint",
                  hint=HOW_TO_GET_A_CHECKPOINT)
        if self.options.interactive:
            box = QMessageBox(QMessageBox.Icon.Information, "No model checkpoint",
                              "Masks cannot be proposed: no Vivim model checkpoint is configured.", parent=self)
            box.setInformativeText(HOW_TO_GET_A_CHECKPOINT)
            choose = box.addButton("Choose checkpoint...", QMessageBox.ButtonRole.AcceptRole)
            box.addButton(QMessageBox.StandardButton.Close)
            box.exec()
            if box.clickedButton() is choose:
                self.choose_checkpoint_dialog()

    def inference_service(self) -> InferenceService:
        """The service of the checkpoint set (see the module docstring for which model a video uses)."""
        if self._service is None:
            self._service = InferenceService(self.checkpoint_path, self.options.device, task=self.options.task,
                                             **self.options.inference)
            self._service.uses_default_checkpoint = not self.checkpoint_explicit  # defer to a workspace's model
        return self._service

    def document_service(self) -> InferenceService | None:
        """The service that proposes for the open video (its workspace's adapted model unless the user chose a
        checkpoint); None without a checkpoint."""
        if self.checkpoint_path is None:
            return None
        service = self.inference_service()
        return service.for_document(self.document) if self.document is not None else service

    def use_workspace_model(self) -> None:
        """The model adapted to this video (a learning round, a fine-tune) is the one to use from now on, also
        where the user had chosen the checkpoint it started from."""
        self.checkpoint_explicit = False
        if self._service is not None:
            self._service.uses_default_checkpoint = True
        self.update_model_label()

    def probe_device(self) -> None:
        """Find CPU/GPU in a background thread (imports torch there, so the first proposal starts sooner)."""
        from .workers import JobRunner

        service = self.inference_service()
        self.device_probe = JobRunner(self)
        self.device_probe.start("Finding the device", lambda progress, cancel: service.device,
                                on_done=self.status.set_device,
                                on_error=lambda exc, details: self.tell(str(exc), dialog=True, title="Device"))

    # proposals -----------------------------------------------------------------------------------------
    def propose(self) -> bool:
        """Propose masks for every frame not edited or accepted, with the current checkpoint."""
        if self.document is None:
            return False
        if self.checkpoint_path is None:
            self.no_checkpoint()
            return False
        self.stop_learning()  # its re-proposal would race this one
        service, document = self.document_service(), self.document

        def job(progress, cancel):
            self.device_found.emit(service.device)  # queued to the GUI thread
            return service.propose(document, progress=progress, cancel=cancel)

        return self.start_job("Proposing masks", job, self._proposed)

    def _proposed(self, result) -> None:
        self.status.set_device(result.device)
        where = "CPU" if result.device == "cpu" else f"GPU ({result.device})"
        text = (f"Proposed {result.proposed} frame(s) in {result.seconds:.1f} s on {where}"
                + (f"; kept {result.kept} frame(s) you edited or accepted" if result.kept else "")
                + ("; cancelled: the frames done so far are saved" if result.cancelled else "") + ".")
        self.tell(text)
        self.proposals_finished.emit()

    def apply_threshold(self, threshold: float) -> bool:
        if self.document is None:
            return False
        document = self.document
        return self.start_job(f"Applying threshold {threshold:.2f}",
                              lambda progress, cancel: document.set_proposal_threshold(threshold),
                              lambda changed: self.tell(f"Threshold {threshold:.2f}: {len(changed)} proposed "
                                                        f"frame(s) changed (edited and accepted frames are kept)."))

    def propagate(self) -> bool:
        if self.document is None:
            return False
        document, start = self.document, self.document.current_frame
        self.canvas.finish_stroke()

        def done(written: list[int]) -> None:
            self.tell(f"Propagated frame {start + 1} to frames {written[0] + 1}-{written[-1] + 1} (proposed: review "
                      f"them)." if written else "Nothing to propagate to: the next frame is already reviewed.")

        return self.start_job("Propagating mask", lambda progress, cancel: document.propagate(
            start, progress=progress, cancel=lambda: cancel.is_set()), done)

    # export ----------------------------------------------------------------------------------------------
    def export_dialog(self) -> None:
        if self.document is None:
            return
        remembered = self.recent.settings.value("export_folder", "")
        default = default_export_folder(self.document, Path(remembered) if remembered else None)
        dialog = ExportDialog(self.document, default, self)
        if dialog.exec():
            folder, options = dialog.result_options()
            self.recent.settings.setValue("export_folder", str(folder))
            self.export_to(folder, options)

    def export_to(self, folder: Path, options) -> bool:
        document = self.document

        def done(result) -> None:
            self.tell(f"Exported {len(result.frames)} frame(s) ({options.format}) to {result.root}; manifest "
                      f"{result.manifest_path.name}.")
            self.last_export = result

        return self.start_job("Exporting", lambda progress, cancel: export_document(
            document, folder, options, progress=progress, cancel=lambda: cancel.is_set()), done)

    # fine-tune -------------------------------------------------------------------------------------------
    def finetune_dialog(self) -> None:
        if self.document is None:
            return
        if self.checkpoint_path is None:
            self.no_checkpoint()
            return
        dialog = FinetuneDialog(self.document, self.model_name(), self)
        if dialog.exec():
            choice = dialog.choice()
            self.start_finetune(max_steps=choice.max_steps, max_minutes=choice.max_minutes)

    def runs_folder(self) -> Path:
        base = self.options.runs_dir or Path(QStandardPaths.writableLocation(
            QStandardPaths.StandardLocation.AppLocalDataLocation) or Path.home() / ".vivim-studio") / "finetune-runs"
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        return Path(base) / f"{safe_video_id(self.document.source.video_id)}-{stamp}"

    def start_finetune(self, **overrides) -> bool:
        """Fine-tune the video's model (the workspace's adapted one unless a checkpoint was chosen) on the
        edited/accepted frames, every 4th held out to measure it (worker thread); when it completes, the new
        model becomes the workspace's model and the frames nobody touched are re-proposed with it."""
        from ..services.finetune import finetune_on_corrections

        if self.document is None or self.checkpoint_path is None:
            return False
        self.stop_learning()
        document, checkpoint, run_dir = self.document, self.document_service().checkpoint_path, self.runs_folder()
        return self.start_job("Fine-tuning", lambda progress, cancel: finetune_on_corrections(
            document, checkpoint, run_dir, device=self.options.device, progress=progress, cancel=cancel,
            **overrides), lambda result: self._finetuned(document, result))

    def _finetuned(self, document, result) -> None:
        if document is not self.document:
            return
        if result.checkpoint_path is None or result.cancelled:
            kept = f" (its best checkpoint so far: {result.checkpoint_path})" if result.checkpoint_path else ""
            self.tell(f"Fine-tuning was cancelled after {result.steps} step(s); the model is unchanged{kept}.")
            return
        summary = (f"Fine-tuning finished after {result.steps} step(s) on {len(result.trained_frames)} corrected "
                   f"frame(s); {result.quality}.")
        if result.workspace_model_sha256:  # it is now the workspace's model
            self.use_workspace_model()
            self.reset_assist()
            self.tell(f"{summary} It is now this video's model: re-proposing the frames you have not touched.")
        elif self.set_checkpoint(result.checkpoint_path, label=f"fine-tuned ({result.run_dir.name})"):
            self.tell(f"{summary} New model: {result.checkpoint_path}; re-proposing the frames you have not "
                      f"touched.")
        else:
            return
        self.propose()
