"""Whole-video prediction: clip schedule, blending, order, native size, bounded memory, cancel, errors."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from vivim_core import build_model
from vivim_core.data.clips import frames_to_tensor
from vivim_core.engine.predict import (PredictionCancelled, PredictionError, clip_schedule, iter_predict,
                                       predict_video)
from vivim_core.errors import VivimError
from vivim_core.model.vivim import VivimOutput


class FakeModel(nn.Module):
    """A stand-in for Vivim (inputs scaled to [0, 1]): probability = the frame's red value, or, with
    `by_position`, (k + 1) / 10 for the k-th frame of each clip."""

    def __init__(self, by_position: bool = False):
        super().__init__()
        self.config = SimpleNamespace(input_mean=(0.0, 0.0, 0.0), input_std=(1.0, 1.0, 1.0), output_stride=32)
        self.anchor = nn.Parameter(torch.zeros(()))
        self.by_position = by_position
        self.clips_seen = 0

    def forward(self, clip):
        self.clips_seen += clip.shape[0]
        prob = clip[:, :, :1].clamp(1e-4, 1 - 1e-4)
        if self.by_position:
            positions = torch.arange(1, clip.shape[1] + 1, dtype=clip.dtype).view(1, -1, 1, 1, 1) / 10
            prob = positions.expand_as(prob)
        logits = torch.log(prob / (1 - prob)) + self.anchor
        return VivimOutput(logits, logits)


def constant_frames(n, height=40, width=56):
    return [np.full((height, width, 3), 20 + i % 200, dtype=np.uint8) for i in range(n)]


def test_clip_schedule_covers_every_frame_and_aligns_the_last_clip():
    assert clip_schedule(10, 5, 2) == [[0, 1, 2, 3, 4], [3, 4, 5, 6, 7], [5, 6, 7, 8, 9]]
    assert clip_schedule(3, 5, 2) == [[0, 1, 2, 2, 2]]  # short video: clamped, as in training
    assert clip_schedule(5, 5, 0) == [[0, 1, 2, 3, 4]]
    assert clip_schedule(0, 5, 2) == []
    for n in range(1, 40):
        covered = {i for clip in clip_schedule(n, 4, 1) for i in clip}
        assert covered == set(range(n))
    with pytest.raises(PredictionError, match="overlap"):
        clip_schedule(10, 5, 5)


def test_frames_come_back_in_order_at_native_size_with_their_own_probability():
    frames = constant_frames(11)
    results = list(iter_predict(FakeModel(), frames, clip_length=4, overlap=1, size=(32, 32), batch_size=2))
    assert [i for i, _ in results] == list(range(11))
    for i, prob in results:
        assert prob.shape == (40, 56) and prob.dtype == np.float32
        assert np.allclose(prob, (20 + i) / 255, atol=1e-4)


def test_overlapping_clips_are_blended_with_centre_weighted_means():
    probs = predict_video(FakeModel(by_position=True), constant_frames(8), clip_length=4, overlap=2, size=(32, 32))
    # clips [0-3], [2-5], [4-7]; position weights 1, 2, 2, 1; position k predicts (k + 1) / 10
    assert np.allclose(probs[0], 0.1) and np.allclose(probs[1], 0.2)
    assert np.allclose(probs[2], (2 * 0.3 + 1 * 0.1) / 3, atol=1e-5)
    assert np.allclose(probs[3], (1 * 0.4 + 2 * 0.2) / 3, atol=1e-5)
    assert np.allclose(probs[7], 0.4)


def test_a_10000_frame_video_streams_in_bounded_memory():
    total, state = 10_000, {"read": 0, "max_pending": 0}

    class Video:
        def __len__(self):
            return total

        def __iter__(self):
            for i in range(total):
                state["read"] += 1
                yield np.full((32, 32, 3), i % 250, dtype=np.uint8)

    emitted = 0
    for index, prob in iter_predict(FakeModel(), Video(), clip_length=5, overlap=2, size=(32, 32), batch_size=4):
        assert index == emitted
        emitted += 1
        state["max_pending"] = max(state["max_pending"], state["read"] - emitted)
    assert emitted == total
    # a batch of clips, plus the reader's prefetch (one batch of new frames: 4 * (5 - 2)), never the video
    assert state["max_pending"] <= 4 * 5 + 4 * 3 + 5


def test_matches_a_direct_forward_of_the_real_model():
    model = build_model("vivim-tiny").eval()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    probs = predict_video(model, frames, clip_length=3, overlap=1, size=(64, 64))
    clip = frames_to_tensor(frames[[0, 1, 1]], model.config.input_mean, model.config.input_std)[None]
    with torch.no_grad():
        expected = torch.sigmoid(model(clip).mask_logits)[0, :2, 0].numpy()
    assert probs.shape == (2, 64, 64)
    assert np.allclose(probs, expected, atol=1e-5)


def test_cancel_stops_promptly_with_an_event_or_a_callable():
    event = threading.Event()
    model = FakeModel()
    with pytest.raises(PredictionCancelled):
        for _ in iter_predict(model, constant_frames(40), clip_length=4, overlap=1, size=(32, 32), batch_size=1,
                              progress=lambda done, total: event.set(), cancel=event):
            pass
    assert model.clips_seen == 1
    assert issubclass(PredictionCancelled, VivimError)
    with pytest.raises(PredictionCancelled):
        next(iter_predict(FakeModel(), constant_frames(5), size=(32, 32), cancel=lambda: True))


def test_bad_frames_and_settings_are_clear_errors():
    with pytest.raises(PredictionError, match="multiple of 32"):
        predict_video(FakeModel(), constant_frames(3), size=(50, 50))
    with pytest.raises(PredictionError, match="uint8 RGB"):
        predict_video(FakeModel(), [np.zeros((32, 32), np.uint8)], size=(32, 32))
    with pytest.raises(PredictionError, match="one size"):
        predict_video(FakeModel(), constant_frames(2) + constant_frames(1, 32, 32), size=(32, 32))
    with pytest.raises(PredictionError, match="num_frames"):
        predict_video(FakeModel(), iter(constant_frames(3)), size=(32, 32))
    assert predict_video(FakeModel(), iter(constant_frames(3)), size=(32, 32), num_frames=3).shape == (3, 40, 56)

    class Short:
        def __len__(self):
            return 6

        def __iter__(self):
            return iter(constant_frames(4))

    with pytest.raises(PredictionError, match="ended after 4 frames"):
        predict_video(FakeModel(), Short(), size=(32, 32), clip_length=3, overlap=1)
