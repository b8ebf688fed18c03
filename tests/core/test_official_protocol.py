"""`protocol="official"` (and `vivim-core predict --protocol official`): each frame predicted as the centre of
its own clip, edge frames repeated as the official data loader does."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from vivim_core.cli import main
from vivim_core.config import get_config
from vivim_core.data.synthetic import write_vtus_dataset
from vivim_core.engine.checkpoint import save_checkpoint
from vivim_core.engine.predict import PredictionError, centre_schedule, clip_plan, predict_video
from vivim_core.model import build_model

TINY = dict(embed_dims=(16, 32, 48, 64), transformer_depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1),
            temporal_depths=(1, 1, 1, 1), decoder_dim=32, boundary_head_dim=8)


def official_window(index: int, num_frames: int, clip_length: int) -> list[int]:
    """The official data loader's clip for frame `index` (its formula, for odd clip lengths)."""
    return [min(max(index + k, 0), num_frames - 1) for k in range(-clip_length // 2 + 1, clip_length // 2 + 1)]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(3)
    return build_model(get_config("vivim-tiny", **TINY)).eval()


def reference_probabilities(model, frames: np.ndarray, clip_length: int = 5) -> np.ndarray:
    """The official inference by hand: ToTensor + Normalize, one window per frame, the centre output."""
    mean = torch.tensor(model.config.input_mean).view(3, 1, 1)
    std = torch.tensor(model.config.input_std).view(3, 1, 1)
    inputs = [(torch.from_numpy(f).permute(2, 0, 1).float() / 255 - mean) / std for f in frames]
    probs = []
    with torch.no_grad():
        for i in range(len(frames)):
            clip = torch.stack([inputs[j] for j in official_window(i, len(frames), clip_length)])[None]
            probs.append(torch.sigmoid(model(clip).mask_logits[0, clip_length // 2, 0]))
    return torch.stack(probs).numpy()


def test_centre_schedule_is_the_official_window_of_each_frame():
    for n in (1, 2, 4, 7):
        assert centre_schedule(n, 5) == [official_window(i, n, 5) for i in range(n)]
    assert centre_schedule(7, 5)[0] == [0, 0, 0, 1, 2] and centre_schedule(7, 5)[6] == [4, 5, 6, 6, 6]
    for indices, weights in clip_plan(7, 5, 2, "official"):
        assert weights == [0, 0, 1, 0, 0]
    with pytest.raises(PredictionError, match="unknown prediction protocol"):
        clip_plan(7, 5, 2, "fastest")


def test_blended_plan_keeps_its_weights():
    plan = clip_plan(3, 5, 2)  # one clamped clip: the repeated last frame counts once
    assert plan == [([0, 1, 2, 2, 2], [1.0, 2.0, 3.0, 0.0, 0.0])]


@pytest.mark.parametrize("num_frames", [3, 7])
def test_official_protocol_gives_each_frame_the_centre_output_of_its_window(model, num_frames):
    rng = np.random.default_rng(num_frames)
    frames = rng.integers(0, 256, (num_frames, 64, 64, 3), dtype=np.uint8)
    got = predict_video(model, frames, protocol="official", clip_length=5, size=(64, 64), batch_size=3)
    np.testing.assert_allclose(got, reference_probabilities(model, frames), atol=1e-5)
    blended = predict_video(model, frames, clip_length=5, overlap=2, size=(64, 64))
    assert np.abs(blended - got).max() > 1e-4  # a different protocol, a different result


def test_predict_cli_protocol_official_on_a_vtus_folder(tmp_path, model):
    data = write_vtus_dataset(tmp_path / "data", num_videos=1, frames_per_video=6, size=(64, 64), split="Test")
    checkpoint = save_checkpoint(model, tmp_path / "model.safetensors")
    out = tmp_path / "pred"
    assert main(["predict", str(data / "Test"), "--checkpoint", str(checkpoint), "--out", str(out), "--device", "cpu",
                 "--protocol", "official", "--clip-length", "5", "--size", "64", "--save-prob", "--no-progress"]) == 0
    names = sorted(p.name for p in (data / "Test" / "0001").iterdir())
    frames = np.stack([cv2.cvtColor(cv2.imread(str(data / "Test" / "0001" / n)), cv2.COLOR_BGR2RGB) for n in names])
    expected = np.rint(reference_probabilities(model, frames) * 255)
    written = np.stack([cv2.imread(str(out / "0001" / n.replace(".jpg", ".png")), cv2.IMREAD_GRAYSCALE)
                        for n in names]).astype(np.float64)
    assert np.abs(written - expected).max() <= 1
    import json

    assert json.loads((out / "predictions.json").read_text())["protocol"] == "official"
