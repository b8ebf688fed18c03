"""The interactive assistant: clicks and boxes that make a mask, and a model that learns while the expert
corrects. Qt-free; the GUI calls `click`/`box` on its thread (a fraction of a second) and runs `adapt` in a
worker.

    assist = AssistService(inference)                    # shares the InferenceService's checkpoint and device
    assist.click(document, frame=12, x=140, y=96, positive=True)      # the frame's mask follows the click
    result = assist.adapt(document, seconds=20)          # learn the human frames, re-propose the others

How a click works: the clicks so far of the lesion being drawn (the document's active lesion) plus the new
one, with that lesion's current mask as the rough mask, go through the prompt-capable model
(`vivim_core.engine.interactive`) on the clip that centres the frame; the human frames of that clip come along
as rough masks, so the model sees what the expert settled nearby.
The result is a human edit of that lesion (status "edited", origin "prompt:<model>", one undo step, the clicks
recorded); other lesions on the frame keep their pixels.
A checkpoint without prompt inputs cannot be steered: its clicks and boxes go to GrabCut seeded by them
(`vivim_core.prompt_fallback`, origin "prompt:grabcut"), and the loop still learns (images only). A model that
does not follow some clicks (its answer leaves a clicked pixel on the wrong side) gets the same help for those
clicks, applied to its answer (origin "prompt:<model>+grabcut"): every click moves the mask its way.

How the loop learns (`adapt`): the model trains on every frame a human edited or accepted for a bounded time,
starting from where the last round stopped, then re-proposes only the frames no human touched, with the human
frames as rough masks; human frames are never overwritten. The adapted model is saved in the workspace
(`models/`) with its lineage, and becomes the workspace's model: reopening the video, a batch `propose` and
the next fine-tune start from it. Its quality is measured only on frames it had not trained on: the frames a
human corrected since the previous round, against the proposal that round's model had made for them.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vivim_core.errors import VivimError

from ..document import FrameStatus
from ..document.mask_ops import dice
from .jobs import Cancel, Progress, is_cancelled


class AssistError(VivimError, ValueError):
    """A click or an adaptation that cannot run (a click outside the frame, a read-only workspace...)."""


GRABCUT = "grabcut"  # the model name of masks made by the classical fallback


def _clicks_prompt(clicks, rough: np.ndarray | None, box=None):
    """A FramePrompt of clicks (x, y, positive), with a rough mask and a box."""
    from vivim_core.prompts import FramePrompt

    return FramePrompt(tuple((x, y) for x, y, p in clicks if p), tuple((x, y) for x, y, p in clicks if not p),
                       rough, box)


def _honours(mask: np.ndarray, click) -> bool:
    """Whether bool (H, W) `mask` agrees with click (x, y, positive) at its pixel."""
    x, y, positive = click
    return bool(mask[int(y), int(x)]) == bool(positive)


@dataclass
class AdaptResult:
    """What one round of learning did. `heldout_dice`: Dice of the previous model's proposals on the frames a
    human corrected since (frames it never trained on), None when there were none."""

    steps: int = 0
    train_seconds: float = 0.0
    repropose_seconds: float = 0.0
    reproposed: int = 0
    changed: list[int] = field(default_factory=list)  # frames whose mask the re-proposal changed
    labelled_frames: int = 0
    heldout_dice: float | None = None
    heldout_frames: int = 0
    checkpoint_sha256: str = ""
    cancelled: bool = False


def adapted_rounds(checkpoint) -> int:
    """How many learning rounds made this checkpoint (its provenance's "rounds"; 0 for any other model). Reads
    the header only (no torch), so the GUI can name the model it uses."""
    from .checkpoint_header import read_metadata

    provenance = read_metadata(checkpoint).get("provenance")
    rounds = provenance.get("rounds") if isinstance(provenance, dict) else None
    return rounds if isinstance(rounds, int) and not isinstance(rounds, bool) and rounds > 0 else 0


class AssistService:
    """Binds a prompt-capable model to one document at a time (see the module docstring)."""

    def __init__(self, inference, *, cache_bytes: int = 1 << 30):
        self.base_inference = inference  # resolved per document: its workspace's adapted model when it has one
        self.inference = inference
        self.cache_bytes = cache_bytes
        self._video = None  # vivim_core.engine.interactive.InteractiveVideo of the current document
        self._document = None
        self._serving = None  # the model that answers clicks and proposes
        self._trainer = None  # InteractiveVideo of the serving model's copy that learns (warm across rounds)
        self._serving_sha = ""
        self._lock = threading.Lock()  # the serving model and the video binding
        self._trained_on: set[int] = set()  # frames the serving model has learnt
        self.rounds = 0

    # binding ----------------------------------------------------------------------------------------------
    @property
    def model_sha256(self) -> str:
        return self._serving_sha or self.inference.checkpoint_sha256

    def _bind(self, document):
        """The interactive video of `document` (made on first use; a new document drops the old cache)."""
        if self._document is document and self._video is not None:
            return self._video
        from vivim_core.engine.interactive import InteractiveVideo

        self.inference = self.base_inference.for_document(document)
        model = self.inference.load()
        options = self.inference.options
        self._serving = copy.deepcopy(model)
        self._serving_sha = self.inference.checkpoint_sha256
        self.rounds = adapted_rounds(self.inference.checkpoint_path)  # an adapted model's rounds go on counting
        self._video = InteractiveVideo(self._serving, document.frame, document.num_frames,
                                       native_size=document.frame_size, size=options["size"],
                                       clip_length=options["clip_length"], overlap=options["overlap"],
                                       device=self.inference.device, cache_bytes=self.cache_bytes)
        self._trainer = self._video.sharing_cache(copy.deepcopy(self._serving))
        self._document = document
        self._trained_on = set()
        return self._video

    def _human_prompts(self, document, exclude: int | None = None) -> dict[int, Any]:
        """Rough-mask prompts of every frame a human edited or accepted (their masks)."""
        from vivim_core.prompts import FramePrompt

        return {i: FramePrompt(rough_mask=document.mask(i))
                for i in document.frames_with_status(FrameStatus.EDITED, FrameStatus.ACCEPTED) if i != exclude}

    # prompts ----------------------------------------------------------------------------------------------
    def _frame_prompt(self, document, frame: int, clicks, box=None):
        mask = document.lesion_mask(frame, document.active_lesion)  # the lesion the clicks draw, not its neighbours
        rough = mask if (mask.any() or document.status(frame).human_reviewed) else None
        if box is not None:
            rough = None
        return _clicks_prompt(clicks, rough, box)

    @property
    def steers_model(self) -> bool | None:
        """Whether clicks steer the model (it has prompt inputs) rather than GrabCut; None before first use."""
        return None if self._video is None else self._video.takes_prompts

    def _apply(self, document, frame: int, prompt, clicks, label: str) -> bool:
        document.check_writable()
        with self._lock:
            video = self._bind(document)
            if not video.takes_prompts:
                return self._apply_grabcut(document, frame, prompt, clicks, label)
            prompts = self._human_prompts(document, exclude=frame)
            prompts[frame] = prompt
            probability = video.predict_frame(frame, prompts)
            sha = self.model_sha256
        mask = probability >= document.proposal_threshold
        if any(not _honours(mask, click) for click in clicks):
            # The model did not follow some clicks (a scanner unlike its training data): the clicks still act,
            # through GrabCut on the model's answer, so that every click moves the mask its way.
            from vivim_core.prompt_fallback import grabcut_prompt

            helped = grabcut_prompt(document.frame(frame), _clicks_prompt(clicks, mask))
            return document.apply_prompt(frame, helped, clicks, f"{sha[:7]}+{GRABCUT}", label)
        return document.apply_prompt(frame, mask, clicks, sha, label)

    def _apply_grabcut(self, document, frame: int, prompt, clicks, label: str) -> bool:
        """The classical answer for a model without prompt inputs: GrabCut seeded by the prompt, with the
        frame's proposal as the prior when the frame has no mask yet."""
        from vivim_core.prompt_fallback import grabcut_prompt

        probability = document.probability(frame)
        prior = None
        if probability is not None:  # the proposal, less the pixels of the frame's other lesions
            others = document.mask(frame) & ~document.lesion_mask(frame, document.active_lesion)
            prior = (probability >= document.proposal_threshold) & ~others
        mask = grabcut_prompt(document.frame(frame), prompt, prior)
        return document.apply_prompt(frame, mask, clicks, GRABCUT, label)

    def click(self, document, frame: int, x: float, y: float, positive: bool = True) -> bool:
        """Add a click at (x, y) on `frame` (positive: lesion here; negative: not lesion here) and let the model
        redraw the frame's mask. Returns True if the mask changed."""
        h, w = document.frame_size
        if not (0 <= x < w and 0 <= y < h):
            raise AssistError(f"click at ({x:.0f}, {y:.0f}) is outside the {w}x{h} frame")
        clicks = (*document.clicks(frame), (int(x), int(y), bool(positive)))  # the active lesion's clicks
        label = "click (lesion)" if positive else "click (background)"
        return self._apply(document, frame, self._frame_prompt(document, frame, clicks), clicks, label)

    def box(self, document, frame: int, box: tuple[float, float, float, float]) -> bool:
        """A box (x0, y0, x1, y1) around the lesion on `frame`: the model draws the lesion inside it (the
        frame's earlier clicks are dropped)."""
        x0, y0, x1, y1 = box
        if abs(x1 - x0) < 2 or abs(y1 - y0) < 2:
            raise AssistError("the box is too small: drag from one corner of the lesion to the opposite one")
        ordered = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        return self._apply(document, frame, self._frame_prompt(document, frame, (), ordered), (), "box")

    # learning -----------------------------------------------------------------------------------------------
    def _heldout(self, document, labels: dict[int, np.ndarray]) -> tuple[float | None, int]:
        """Dice of the stored proposals (made by a model that never trained on these frames) on the frames a
        human labelled since the last round."""
        scores = []
        for index, mask in labels.items():
            if index in self._trained_on:
                continue
            probability = document.probability(index)
            if probability is not None:
                scores.append(dice(probability >= document.proposal_threshold, mask))
        return (float(np.mean(scores)) if scores else None), len(scores)

    def adapt(self, document, *, seconds: float | None = 20.0, steps: int | None = None,
              progress: Progress | None = None, cancel: Cancel | None = None, save: bool = True) -> AdaptResult:
        """One round of the learning loop (see the module docstring). Bounded by `seconds` and/or `steps` of
        training; the re-proposal then covers every frame no human touched."""
        document.check_writable()
        result = AdaptResult()
        labels = {i: document.mask(i) for i in document.frames_with_status(FrameStatus.EDITED, FrameStatus.ACCEPTED)}
        result.labelled_frames = len(labels)
        if not labels:
            return result
        result.heldout_dice, result.heldout_frames = self._heldout(document, labels)
        with self._lock:
            self._bind(document)
            trainer = self._trainer  # a copy: clicks keep using the serving model meanwhile
        stats = trainer.adapt(labels, steps=steps, seconds=seconds, cancel=lambda: is_cancelled(cancel))
        result.steps, result.train_seconds = stats["steps"], stats["seconds"]
        if is_cancelled(cancel):
            result.cancelled = True
            return result
        with self._lock:
            self._serving.load_state_dict(trainer.model.state_dict())
            self._trained_on |= set(labels)
            self.rounds += 1
            self._serving_sha = self._save(document, result) if save else f"adapted-{self.rounds}"
        result.checkpoint_sha256 = self._serving_sha
        started = time.perf_counter()
        self._repropose(document, result, progress, cancel)
        result.repropose_seconds = time.perf_counter() - started
        return result

    def _repropose(self, document, result: AdaptResult, progress: Progress | None, cancel: Cancel | None) -> None:
        todo = [i for i in range(document.num_frames) if not document.status(i).human_reviewed]
        with self._lock:
            video = self._video
            prompts = self._human_prompts(document)
            sha = self.model_sha256
            for done, (index, probability) in enumerate(
                    video.predict_frames(todo, prompts, cancel=lambda: is_cancelled(cancel)), 1):
                before = document.mask(index)
                if document.set_proposal(index, probability, model=sha, durable=False):
                    result.reproposed += 1
                    if not np.array_equal(before, document.mask(index)):
                        result.changed.append(index)
                if progress is not None:
                    progress(done, len(todo))
        document.sync()
        result.cancelled = is_cancelled(cancel)

    def _save(self, document, result: AdaptResult) -> str:
        """Store the serving model as the workspace's model; returns its SHA-256."""
        if document.workspace is None:
            return f"in-memory-adapted-{self.rounds:04d}"
        provenance = {"kind": "adapted", "rounds": self.rounds, "labelled_frames": sorted(
            document.frames_with_status(FrameStatus.EDITED, FrameStatus.ACCEPTED)),
            "parent_sha256": self._serving_sha, "steps": self._trainer.adapted_steps,
            "heldout_dice": result.heldout_dice, "heldout_frames": result.heldout_frames}
        return document.save_workspace_model(self._serving, provenance)
