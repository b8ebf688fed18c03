"""Checkpoints: bit-exact round trip, no unpickling ever, and clear errors for every bad file."""

from __future__ import annotations

import pickle

import pytest
import torch
from safetensors.torch import save_file

from vivim_core.engine.checkpoint import (
    CheckpointError, checkpoint_sha256, load_model, read_checkpoint_info, save_checkpoint,
)
from vivim_core.model import build_model


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    model = build_model("vivim-tiny", scan_branches=("forward", "spatial"))
    path = save_checkpoint(model, tmp_path_factory.mktemp("ckpt") / "tiny.safetensors",
                           provenance={"command": "test", "seed": 0})
    return model, path


def test_round_trip_is_bit_exact_and_rebuilds_the_config(tiny_checkpoint):
    model, path = tiny_checkpoint
    loaded = load_model(path)
    assert loaded.config == model.config
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    for key in original:
        assert torch.equal(original[key], restored[key]), key
    info = read_checkpoint_info(path)
    assert info["provenance"] == {"command": "test", "seed": 0}
    assert len(checkpoint_sha256(path)) == 64


def test_fp16_checkpoint_loads_as_float32(tmp_path):
    model = build_model("vivim-tiny")
    path = save_checkpoint(model, tmp_path / "half.safetensors", dtype=torch.float16)
    loaded = load_model(path)
    weight = next(loaded.parameters())
    assert weight.dtype == torch.float32
    assert path.stat().st_size < 0.6 * sum(p.numel() * 4 for p in model.parameters())


def test_wrong_variant_is_refused(tiny_checkpoint):
    _, path = tiny_checkpoint
    with pytest.raises(CheckpointError, match=r"holds a 'vivim-tiny' model, but 'vivim-b3' was asked for"):
        load_model(path, variant="vivim-b3")


def test_truncated_checkpoint(tiny_checkpoint, tmp_path):
    _, path = tiny_checkpoint
    cut = tmp_path / "cut.safetensors"
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut.safetensors is truncated"):
        load_model(cut)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty or truncated"):
        load_model(empty)


def test_not_a_checkpoint(tmp_path):
    junk = tmp_path / "notes.safetensors"
    junk.write_text("this is a text file, not weights\n" * 10)
    with pytest.raises(CheckpointError, match="not a safetensors checkpoint"):
        load_model(junk)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a Vivim checkpoint"):
        load_model(foreign)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "missing.safetensors")


class _Payload:
    def __reduce__(self):
        import pathlib

        return (pathlib.Path.write_text, (pathlib.Path(MARKER), "pwned"))


MARKER = ""


def test_pickle_disguised_as_checkpoint_is_refused_and_never_executed(tmp_path):
    global MARKER
    MARKER = str(tmp_path / "executed.txt")
    for name, writer in (("raw.safetensors", lambda p: p.write_bytes(pickle.dumps(_Payload()))),
                         ("zip.safetensors", lambda p: torch.save({"x": _Payload()}, p))):
        path = tmp_path / name
        writer(path)
        with pytest.raises(CheckpointError, match="PyTorch pickle"):
            load_model(path)
    assert not (tmp_path / "executed.txt").exists()


def test_nan_weights_are_refused(tmp_path):
    model = build_model("vivim-tiny")
    with torch.no_grad():
        model.decoder.classifier.weight[0, 0] = float("nan")
    path = save_checkpoint(model, tmp_path / "nan.safetensors")
    with pytest.raises(CheckpointError, match="NaN or infinite weights"):
        load_model(path)


def test_tensors_that_do_not_match_the_config_are_refused(tmp_path):
    model = build_model("vivim-tiny")
    path = save_checkpoint(model, tmp_path / "ok.safetensors")
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    tensors["decoder.classifier.weight"] = torch.zeros(2, 256, 1, 1)
    del tensors["decoder.classifier.bias"]
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata=metadata)
    with pytest.raises(CheckpointError, match=r"missing tensor.*wrong shape"):
        load_model(bad)


def test_header_length_starting_with_pickle_byte_is_still_read_as_safetensors(tmp_path):
    """Regression: a safetensors header of length 0x0480 starts with the bytes 80 04, like a pickle."""
    import struct

    path = tmp_path / "foreign.safetensors"
    for pad in range(2000):
        save_file({"w": torch.zeros(2)}, str(path), metadata={"pad": "x" * pad})
        (length,) = struct.unpack("<Q", path.read_bytes()[:8])
        if length == 0x0480:
            break
    assert path.read_bytes()[:2] == b"\x80\x04"
    with pytest.raises(CheckpointError, match="not a Vivim checkpoint"):  # not "looks like a PyTorch pickle"
        load_model(path)
