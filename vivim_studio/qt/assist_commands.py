"""The model as an assistant (a mixin of `MainWindow`): the Prompt tool's clicks and boxes, and the loop that
learns while the expert corrects. Both call `services.assist.AssistService` off the GUI thread.

Prompt tool: each click or box is queued on `PromptQueue` (one worker, in order); its marker shows at once,
pale until the model has redrawn the frame's mask (one undo step per click, recorded by the document).

Learning: every accept or edit (a frame becoming, or changing while, edited or accepted) restarts a quiet
period of LEARN_QUIET_MS; when it ends, one round (`AssistService.adapt`: a bounded fine-tune on the human
frames, then a re-proposal of the frames nobody touched) runs on its own `JobRunner`. Never two rounds at once:
changes made during a round ask for one more round after it (at most one waits). A round waits while the
window's job (proposing, fine-tuning...) runs. Model > Learn from my corrections turns it off (remembered).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer

from ..services import checkpoint_summary, has_prompt_inputs
from ..services.assist import AssistService, adapted_rounds
from ..services.checkpoint_header import read_metadata
from .prompt_queue import PromptOutcome, PromptQueue, PromptRequest
from .tools import Tool
from .workers import JobRunner

LEARN_QUIET_MS = 1500  # a round starts this long after the last accept or edit
LEARN_SETTING = "learn_from_corrections"


def model_description(path: Path) -> str:
    """How the status bar names a model adapted to the video in its workspace, from its header."""
    provenance = read_metadata(path).get("provenance")
    provenance = provenance if isinstance(provenance, dict) else {}
    rounds = adapted_rounds(path)
    if provenance.get("kind") == "finetuned":
        return "fine-tuned on this video" + (f" (then {rounds} learning rounds)" if rounds else "")
    return f"adapted to this video (round {rounds})"


def _frames(count: int) -> str:
    return f"{count} frame{'s' if count != 1 else ''}"


class AssistCommands:
    """Needs: self.document, self.canvas, self.timeline, self.status, self.actions_by_id, self.recent,
    self.options, self.runner, self.inference_service(), self.document_service(), self.tell(), self.fail()."""

    def init_assist(self) -> None:
        self._assist: AssistService | None = None
        self.prompt_queue = PromptQueue(self)
        self.prompt_queue.finished.connect(self._prompt_done)
        self.canvas.prompt_clicked.connect(self.prompt_click)
        self.canvas.prompt_boxed.connect(self.prompt_box)
        self.learning_runner = JobRunner(self)
        self.learning_runner.progress.connect(lambda _title, done, total:
                                              self.status.learning_progress_update(done, total))
        self.status.learning_stop.clicked.connect(self.stop_learning)
        self._learn_timer = QTimer(self, singleShot=True, interval=LEARN_QUIET_MS)
        self._learn_timer.timeout.connect(self._learning_due)
        self.learning_wanted = False  # labels changed since the last round started
        learn = self.actions_by_id["learn"]
        learn.setChecked(str(self.recent.settings.value(LEARN_SETTING, "true")).lower() == "true")
        learn.toggled.connect(self._learning_toggled)

    # the assistant ------------------------------------------------------------------------------------------
    def assist_service(self) -> AssistService:
        """The assistant for the current checkpoint (made on first use; it loads its model in the worker)."""
        if self._assist is None:
            self._assist = AssistService(self.inference_service())
        return self._assist

    def reset_assist(self) -> None:
        """A new model (another checkpoint, a fine-tuned one): the next click or round starts from it."""
        self.stop_learning()  # a round of the old model would make its adaptation the video's model
        self._assist = None
        self.refresh_assist()

    def prompt_problem(self) -> str | None:
        """Why clicks and boxes cannot work now (no prompt inputs, read-only...), or None when they can."""
        if self.document is None:
            return None
        service = self.document_service()
        if service is None:
            return "The Prompt tool needs a model: no Vivim checkpoint is configured (Model > Choose checkpoint...)."
        if not has_prompt_inputs(service.checkpoint_path):
            return (f"The Prompt tool is unavailable: the model {service.checkpoint_path.name} has no prompt inputs, "
                    f"so clicks and boxes cannot steer it, and it cannot learn from your corrections as you work. "
                    f"Choose a prompt-capable checkpoint (Model > Choose checkpoint...); the brush, eraser and "
                    f"lasso work as usual.")
        if not self.document.writable:
            return "The Prompt tool cannot change this workspace: it is open read-only."
        return None

    def refresh_assist(self) -> None:
        """Follow a new document or model: the Prompt tool's tooltip, the learning toggle, the model's name."""
        problem = self.prompt_problem()
        prompt = self.actions_by_id["tool_prompt"]
        prompt.setToolTip(problem or f"{prompt.statusTip()} (Q)")
        learn = self.actions_by_id["learn"]
        learn.setEnabled(self.document is not None and problem is None)
        learn.setToolTip(problem or learn.statusTip())
        if problem is not None and self.canvas.tool is Tool.PROMPT:
            self.set_tool(Tool.BRUSH)
        self.update_model_label()

    def uses_workspace_model(self) -> bool:
        """The open video uses the model adapted to it in its workspace (not the checkpoint set)."""
        if self.document is None or self.checkpoint_path is None:
            return False
        return self.document_service() is not self.inference_service()

    def model_name(self) -> str:
        """The model the open video uses, in words: "adapted to this video (round 4)", or the checkpoint's name."""
        if self.uses_workspace_model():
            return model_description(self.document_service().checkpoint_path)
        return self.checkpoint_label()[0] if self.checkpoint_path is not None else "none"

    def update_model_label(self) -> None:
        """Name the model the current document uses in the status bar: the workspace's adapted one, or the
        checkpoint set."""
        if not self.uses_workspace_model():
            if self.checkpoint_path is not None:
                self.status.set_checkpoint(*self.checkpoint_label())
            return
        path = self.document_service().checkpoint_path
        self.status.set_checkpoint(self.model_name(), f"The model adapted to this video, kept in its workspace: "
                                                      f"{path.name}\n{checkpoint_summary(path)}")

    # the Prompt tool ------------------------------------------------------------------------------------------
    def prompt_click(self, x: int, y: int, positive: bool) -> bool:
        """A click of the Prompt tool at pixel (x, y) of the shown frame: queued for the model."""
        return self._submit_prompt(click=(int(x), int(y), bool(positive)))

    def prompt_box(self, box: tuple[float, float, float, float]) -> bool:
        """A box dragged around the lesion on the shown frame: the model draws the lesion inside it."""
        return self._submit_prompt(box=tuple(float(v) for v in box))

    def _submit_prompt(self, click=None, box=None) -> bool:
        document = self.document
        if document is None:
            return False
        problem = self.prompt_problem()
        if problem is not None:
            self.tell(problem, dialog=True, title="Prompt tool unavailable")
            return False
        frame = self.canvas.frame_index
        h, w = document.frame_size
        if click is not None and not (0 <= click[0] < w and 0 <= click[1] < h):
            self.tell("That click was outside the image: click on the lesion (or, right-click, on the background).")
            return False
        assist = self.assist_service()
        request = PromptRequest(document, frame, click=click, box=box)
        if click is not None:
            self.canvas.add_pending_click(frame, *click)

        def apply() -> bool:  # in the worker: True when the mask changed (a click may only be recorded)
            before = document.mask(frame).copy()
            if click is not None:
                assist.click(document, frame, *click)
            else:
                assist.box(document, frame, box)
            return not np.array_equal(before, document.mask(frame))

        self.prompt_queue.submit(request, apply)
        if self.prompt_queue.pending > 1:
            self.status.show_message(f"{self.prompt_queue.pending} clicks waiting for the model…")
        return True

    def _prompt_done(self, outcome: PromptOutcome) -> None:
        request = outcome.request
        if request.click is not None:
            self.canvas.remove_pending_click(request.frame, *request.click)
        if request.document is not self.document:
            return  # the video was closed meanwhile
        if not self.prompt_queue.pending:
            self._resume_learning()  # a round asked for while the clicks computed
        if outcome.error is not None:
            self.fail("The click could not be applied" if request.click else "The box could not be applied",
                      outcome.error, outcome.details)
            return
        what = "Click" if request.click is not None else "Box"
        model = self._serving_name()
        if outcome.value:
            self.tell(f"{what} applied (model {model}, {outcome.seconds * 1000:.0f} ms).")
        else:
            self.tell(f"{what} recorded, mask unchanged (model {model}, {outcome.seconds * 1000:.0f} ms).")

    def _serving_name(self) -> str:
        assist = self._assist
        if assist is None:
            return "?"
        if assist.rounds:
            return f"adapted to this video, round {assist.rounds}"
        service = assist.inference
        return model_description(service.checkpoint_path) if service.adapted_for else service.checkpoint_path.stem

    # learning from corrections ------------------------------------------------------------------------------
    @property
    def learning_enabled(self) -> bool:
        learn = self.actions_by_id["learn"]
        return learn.isChecked() and learn.isEnabled()

    def _learning_toggled(self, on: bool) -> None:
        self.recent.settings.setValue(LEARN_SETTING, "true" if on else "false")
        if on:
            self.tell("Learning from your corrections: after you accept or correct frames, the model adapts to "
                      "them in the background and re-proposes the frames you have not touched.")
        else:
            self._learn_timer.stop()
            self.learning_wanted = False
            self.stop_learning()

    def labels_changed(self, index: int) -> None:
        """A frame's mask or status changed: if it is now the expert's (edited, accepted), learn soon."""
        document = self.document
        if document is None or not self.learning_enabled or not document.status(index).human_reviewed:
            return
        self.learning_wanted = True
        self._learn_timer.start()  # restarts: the round waits for a quiet moment

    def _learning_due(self) -> None:
        if not self.learning_wanted or not self.learning_enabled or self.document is None:
            return
        if self.learning_runner.busy or self.runner.busy or self.prompt_queue.pending:
            return  # asked again when the round, the job or the clicks end
        self.start_learning_round()

    def start_learning_round(self) -> bool:
        """One round now (see the module docstring); False when one runs or nothing is labelled."""
        from ..document import FrameStatus

        document = self.document
        if document is None or self.learning_runner.busy:
            return False
        frames = len(document.frames_with_status(FrameStatus.EDITED, FrameStatus.ACCEPTED))
        if not frames:
            return False
        self.learning_wanted = False
        assist, limits = self.assist_service(), dict(self.options.learning)
        self.status.learning_started(frames)
        return self.learning_runner.start(
            "Learning from corrections",
            lambda progress, cancel: assist.adapt(document, progress=progress, cancel=cancel, **limits),
            on_done=lambda result: self._learned(document, assist, result),
            on_error=lambda exc, details: self._learning_failed(document, exc, details))

    def stop_learning(self) -> None:
        """Ask a running round to stop (it keeps the model it had when it trained nothing yet)."""
        if self.learning_runner.busy:
            self.learning_runner.cancel()
            self.status.learning_stopping()

    def wait_for_learning(self, timeout_ms: int) -> None:
        """Stop a round and wait for its thread (before its document closes)."""
        self.stop_learning()
        self.learning_runner.wait(timeout_ms)

    def _learned(self, document, assist: AssistService, result) -> None:
        self.status.learning_finished()
        if document is not self.document:
            return
        if result.checkpoint_sha256:
            if assist is self._assist:  # not when the user chose another checkpoint meanwhile
                self.use_workspace_model()
            self.timeline.set_changed(result.changed)
            quality = (f"Dice {result.heldout_dice:.2f} on {_frames(result.heldout_frames)} it had not seen"
                       if result.heldout_dice is not None else
                       "quality not measured yet (no unseen corrected frame with an earlier proposal)")
            stopped = " (stopped before the last frames)" if result.cancelled else ""
            self.tell(f"Model updated (round {assist.rounds}): {_frames(len(result.changed))} re-proposed"
                      f"{stopped}; {quality}.")
        elif result.cancelled:
            self.tell("Learning round stopped; the model is unchanged.")
        self._resume_learning()

    def _learning_failed(self, document, error: BaseException, details: str) -> None:
        self.status.learning_finished()
        if document is self.document:
            self.fail("Learning from corrections failed", error, details)

    def _resume_learning(self) -> None:
        """After a round, a job or the last queued click: a round that was asked for meanwhile starts after the
        quiet period."""
        if self.learning_wanted and self.learning_enabled and not self._learn_timer.isActive():
            self._learn_timer.start()
