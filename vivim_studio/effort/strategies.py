"""The `studio` strategy: everything the Studio does for the expert, through its own services.

* start: Propose masks for every frame with the starting checkpoint (the Propose button);
* a correction is a click of the Prompt tool (`AssistService.click`), positive on missed lesion, negative on
  spill; the frame's mask follows each click;
* between rounds: one round of the learning loop (`AssistService.adapt`): a bounded fine-tune on the frames
  a human edited or accepted, then a re-proposal of the frames no human touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..services import InferenceService
from ..services.assist import AssistService
from .protocol import Correction

DEFAULT_ADAPT_SECONDS = {"cpu": 20.0, "cuda": 5.0}


class StudioStrategy:
    name = "studio"
    correction_kind = "click"

    def __init__(self, checkpoint: Path | None = None, device: str = "auto", task: str | None = "thyroid",
                 adapt_seconds: float | None = None, adapt_steps: int | None = None, **inference: Any):
        self.inference = InferenceService(checkpoint, device, task=task, **inference)
        self.assist = AssistService(self.inference)
        self.adapt_seconds = adapt_seconds
        self.adapt_steps = adapt_steps
        self.rounds: list[dict[str, Any]] = []

    def start(self, document) -> None:
        self.inference.propose(document)

    def correct(self, document, frame: int, correction: Correction) -> None:
        self.assist.click(document, frame, correction.x, correction.y, correction.positive)

    def between_rounds(self, document, round_index: int) -> None:
        seconds = self.adapt_seconds
        if seconds is None and self.adapt_steps is None:
            seconds = DEFAULT_ADAPT_SECONDS["cuda" if self.inference.device.startswith("cuda") else "cpu"]
        result = self.assist.adapt(document, seconds=seconds, steps=self.adapt_steps)
        self.rounds.append({"round": round_index, "steps": result.steps, "train_seconds": round(result.train_seconds, 2),
                            "repropose_seconds": round(result.repropose_seconds, 2),
                            "changed_frames": len(result.changed), "labelled_frames": result.labelled_frames,
                            "heldout_dice": result.heldout_dice, "heldout_frames": result.heldout_frames})
