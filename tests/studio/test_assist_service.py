"""The interactive assistant without the GUI (`vivim_studio.services.assist`): clicks move the mask their way,
the learning loop never overwrites a human frame, and a reopened workspace proposes with its adapted model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vivim_studio.document import FrameStatus, VideoDocument
from vivim_studio.services import InferenceService
from vivim_studio.services.assist import AssistService

OPTIONS = dict(size=(64, 64), clip_length=5, overlap=2, batch_size=1)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Randomly initialised vivim-tiny checkpoints, with and without prompt inputs."""
    import torch

    import vivim_core
    from vivim_core.model import add_prompt_inputs

    torch.manual_seed(0)  # the same random models every run
    folder = tmp_path_factory.mktemp("ckpt")
    paths = {"images": folder / "images.safetensors", "prompts": folder / "prompts.safetensors"}
    vivim_core.save_checkpoint(vivim_core.build_model("vivim-tiny"), paths["images"])
    vivim_core.save_checkpoint(add_prompt_inputs(vivim_core.build_model("vivim-tiny")), paths["prompts"])
    return paths


@pytest.fixture
def video(tmp_path) -> Path:
    from vivim_core.data.synthetic import make_ultrasound_video, write_video_file

    frames, _ = make_ultrasound_video(num_frames=8, height=64, width=64, seed=3)
    return write_video_file(tmp_path / "clip.avi", frames, fps=10)


@pytest.mark.parametrize("kind", ["images", "prompts"])
def test_a_click_moves_the_mask_its_way(checkpoints, video, kind):
    assist = AssistService(InferenceService(checkpoints[kind], "cpu", **OPTIONS))
    with VideoDocument.open(video) as document:
        assist.click(document, 2, 30, 30, positive=True)
        grown = document.mask(2)
        assert grown[30, 30] and document.status(2) is FrameStatus.EDITED
        rows, cols = np.nonzero(grown & (np.hypot(*np.indices(grown.shape) - 30) >= 7))
        assert rows.size  # the mask reaches beyond the click's own pixels
        y, x = int(rows[0]), int(cols[0])
        assist.click(document, 2, x, y, positive=False)  # spill away from the first click
        assert not document.mask(2)[y, x] and document.mask(2)[30, 30] and document.mask(2).sum() < grown.sum()
        assert document.record(2).clicks == ((30, 30, True), (x, y, False))
        origin = document.record(2).mask_origin
        assert origin == "prompt:grabcut" if kind == "images" else origin.startswith("prompt:")


def test_the_loop_never_overwrites_a_human_frame_and_reopens_with_its_model(checkpoints, video):
    inference = InferenceService(checkpoints["prompts"], "cpu", **OPTIONS)
    inference.uses_default_checkpoint = True  # as with the bundled default: the workspace's model takes over
    assist = AssistService(inference)
    painted = np.zeros((64, 64), bool)
    painted[10:30, 12:40] = True
    with VideoDocument.open(video) as document:
        inference.propose(document)
        document.set_mask(1, painted)
        document.accept(1)
        assist.click(document, 5, 50, 50, positive=True)
        edited = document.mask(5)
        result = assist.adapt(document, steps=2, seconds=None)
        assert result.steps == 2 and result.labelled_frames == 2 and result.reproposed == 6
        assert np.array_equal(document.mask(1), painted) and document.status(1) is FrameStatus.ACCEPTED
        assert np.array_equal(document.mask(5), edited) and document.status(5) is FrameStatus.EDITED
        assert result.checkpoint_sha256.startswith(document.record(0).model)  # the others come from the adapted model
        adapted = document.workspace_model_path()
        assert adapted is not None and adapted.is_file()
    with VideoDocument.open(video) as reopened:
        assert inference.for_document(reopened).checkpoint_path == adapted
