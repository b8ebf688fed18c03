"""A checkpoint is untrusted input: its header, its config and its provenance are checked (types, bounds, the
memory they imply, every tensor entry) before anything is allocated, and every failure is a CheckpointError
that names the file."""

from __future__ import annotations

import json
import os
import struct
import threading

import pytest
import torch

from vivim_core.checkpoint_header import (MAX_HEADER_BYTES, MAX_JSON_DEPTH, is_vivim_checkpoint,
                                          read_checkpoint_info, read_safetensors_header)
from vivim_core.cli import main
from vivim_core.config import MAX_PARAMETERS, ConfigError, ModelConfig, estimated_parameters, get_config
from vivim_core.engine.checkpoint import CheckpointError, load_model, parameter_count, save_checkpoint
from vivim_core.model import build_model

SMALL = dict(embed_dims=(8, 16, 32, 64), transformer_depths=(1, 1, 1, 1), temporal_depths=(1, 0, 0, 1),
             num_heads=(1, 1, 1, 1), decoder_dim=32, boundary_head_dim=8)


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("vivim-tiny", **SMALL)
    return save_checkpoint(model, tmp_path_factory.mktemp("ckpt") / "small.safetensors",
                           provenance={"kind": "train", "train_size": [64, 64], "clip_length": 3, "step": 8})


def split_file(path):
    """(header dict, data bytes) of a safetensors file."""
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + length]), raw[8 + length:]


def write_raw(path, header, data=b""):
    """A safetensors-like file with exactly this header (a dict, or raw bytes) and data."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


def altered(small_checkpoint, path, metadata=None, entries=None):
    """The small checkpoint with some metadata values (strings, or JSON-able values dumped) or tensor entries
    replaced; None removes a key."""
    header, data = split_file(small_checkpoint)
    for key, value in (metadata or {}).items():
        if value is None:
            header["__metadata__"].pop(key, None)
        else:
            header["__metadata__"][key] = value if isinstance(value, str) else json.dumps(value)
    for key, value in (entries or {}).items():
        if value is None:
            header.pop(key)
        else:
            header[key] = value
    return write_raw(path, header, data)


def config_with(small_checkpoint, **fields):
    config = json.loads(read_checkpoint_info(small_checkpoint)["config"].to_json())
    config.update(fields)
    return config


# the model config ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fields, problem", [
    ({"embed_dims": [0, 16, 32, 64]}, "embed_dims"),
    ({"embed_dims": [-8, 16, 32, 64]}, "embed_dims"),
    ({"decoder_dim": 0}, "decoder_dim"),
    ({"d_state": -1}, "d_state"),
    ({"transformer_depths": [1, 1, 10 ** 6, 1]}, "transformer_depths"),
    ({"embed_dims": [8, 16, 32, "64"]}, "embed_dims"),
    ({"decoder_dim": 32.5}, "decoder_dim"),
    ({"decoder_dim": True}, "decoder_dim"),
    ({"expand": None}, "expand"),
    ({"num_heads": "1111"}, "num_heads"),
    ({"drop_path_rate": "high"}, "drop_path_rate"),
    ({"drop_path_rate": 7.0}, "drop_path_rate"),
    ({"input_std": [0.2, 0.0, 0.2]}, "input_std"),
    ({"input_mean": [0.5, 0.5]}, "input_mean"),
    ({"variant": 42}, "variant"),
    ({"variant": "tiny\nvivim-core: all checks passed"}, "variant"),
    ({"scan_branches": "forward"}, "scan_branches"),
    ({"embed_dims": [8] * 40, "transformer_depths": [1] * 40, "num_heads": [1] * 40,
      "sequence_reduction_ratios": [1] * 40, "mlp_ratios": [1] * 40, "temporal_depths": [0] * 40}, "stages"),
    ({"embed_dims": [8192] * 4, "num_heads": [8] * 4, "transformer_depths": [100] * 4}, "parameters"),
    ({"embed_dims": [256, 16, 32, 64], "num_heads": [256, 1, 1, 1], "sequence_reduction_ratios": [1, 1, 1, 1]},
     "activation"),
])
def test_an_absurd_or_mistyped_config_is_refused_before_anything_is_built(small_checkpoint, tmp_path, fields,
                                                                          problem, monkeypatch):
    import vivim_core.model.vivim as vivim_module

    def never(*args, **kwargs):
        raise AssertionError("a model was built from a config that should have been refused")

    bad = altered(small_checkpoint, tmp_path / "bad.safetensors",
                  {"model_config": config_with(small_checkpoint, **fields)})
    monkeypatch.setattr(vivim_module.Vivim, "__init__", never)
    with pytest.raises(CheckpointError, match=problem) as caught:
        load_model(bad)
    assert str(bad) in str(caught.value)
    assert not is_vivim_checkpoint(bad)


def test_config_bounds_also_hold_when_a_config_is_built_in_code():
    with pytest.raises(ConfigError, match="embed_dims"):
        ModelConfig(embed_dims=(0, 1, 2, 3))
    with pytest.raises(ConfigError, match="parameters"):
        get_config("vivim-b3", embed_dims=(8192,) * 4, num_heads=(8,) * 4, transformer_depths=(100,) * 4)


@pytest.mark.parametrize("variant", ["vivim-tiny", "vivim-b1", "vivim-b3"])
@pytest.mark.parametrize("ablation", [{}, {"scan_branches": ()}, {"scan_branches": ("forward",)}])
def test_the_parameter_estimate_is_exact(variant, ablation):
    config = get_config(variant, **ablation)
    assert estimated_parameters(config) == parameter_count(config) < MAX_PARAMETERS


# the header --------------------------------------------------------------------------------------------------
def test_a_named_pipe_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    outcome = {}

    def load():
        try:
            load_model(fifo)
        except BaseException as exc:  # noqa: BLE001 - inspected below
            outcome["error"] = exc

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(timeout=60)
    if thread.is_alive():  # unblock the reader so that the test process can end, then fail
        fd = os.open(fifo, os.O_WRONLY)
        os.close(fd)
        thread.join()
        pytest.fail("loading a FIFO blocked")
    assert isinstance(outcome.get("error"), CheckpointError), outcome
    assert "named pipe" in str(outcome["error"]) and str(fifo) in str(outcome["error"])


def deep(levels):
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("case, problem", [
    ("huge_length", "header"),
    ("deep_header", "nested"),
    ("header_list", "JSON object"),
    ("metadata_list", "__metadata__"),
    ("metadata_number", "__metadata__"),
    ("nan_constant", "not valid JSON"),
    ("entry_not_object", "decoder.classifier.bias"),
    ("entry_missing_dtype", "dtype"),
    ("entry_unknown_dtype", "dtype"),
    ("entry_negative_shape", "shape"),
    ("entry_shape_strings", "shape"),
    ("entry_shape_bool", "shape"),
    ("entry_offsets_outside", "truncated"),
    ("entry_offsets_backwards", "data_offsets"),
    ("entry_offsets_wrong_size", "data_offsets"),
    ("entry_offsets_overlap", "overlap"),
    ("entry_huge_numbers", "shape"),
    ("entry_int_dtype_for_weights", "dtype"),
    ("entry_extra_key", "unexpected"),
    ("too_many_digits", "not valid JSON"),
])
def test_a_malformed_header_is_a_clear_error(small_checkpoint, tmp_path, case, problem):
    header, data = split_file(small_checkpoint)
    entry = header["decoder.classifier.bias"]
    path = tmp_path / f"{case}.safetensors"
    begin, end = entry["data_offsets"]
    if case == "huge_length":
        path.write_bytes(struct.pack("<Q", MAX_HEADER_BYTES + 1) + b" " * (MAX_HEADER_BYTES + 16))
    elif case == "deep_header":
        write_raw(path, ('{"__metadata__": {"format": "vivim-checkpoint"}, "x": ' + deep(5000) + "}").encode())
    elif case == "header_list":
        write_raw(path, [1, 2, 3])
    elif case == "metadata_list":
        write_raw(path, dict(header, __metadata__=["format", "vivim-checkpoint"]), data)
    elif case == "metadata_number":
        write_raw(path, dict(header, __metadata__=dict(header["__metadata__"], format_version=1)), data)
    elif case == "nan_constant":
        write_raw(path, json.dumps(header).replace('"data_offsets": [', '"data_offsets": [NaN, ', 1).encode(), data)
    elif case == "too_many_digits":
        write_raw(path, json.dumps(header).replace('"data_offsets": [', '"data_offsets": [' + "9" * 5000 + ", ",
                                                   1).encode(), data)
    else:
        changes = {
            "entry_not_object": "F32",
            "entry_missing_dtype": {k: v for k, v in entry.items() if k != "dtype"},
            "entry_unknown_dtype": dict(entry, dtype="F7"),
            "entry_negative_shape": dict(entry, shape=[-1]),
            "entry_shape_strings": dict(entry, shape=["1"]),
            "entry_shape_bool": dict(entry, shape=[True]),
            "entry_offsets_outside": dict(entry, data_offsets=[len(data) + 4, len(data) + 8]),
            "entry_offsets_backwards": dict(entry, data_offsets=[end, begin]),
            "entry_offsets_wrong_size": dict(entry, data_offsets=[begin, end - 2]),
            "entry_offsets_overlap": dict(entry, data_offsets=[0, end - begin]),
            "entry_huge_numbers": dict(entry, shape=[2 ** 62, 2 ** 62]),
            "entry_int_dtype_for_weights": dict(entry, dtype="I32"),
            "entry_extra_key": dict(entry, pickle="cos\nsystem\n"),
        }
        header["decoder.classifier.bias"] = changes[case]
        write_raw(path, header, data)
    with pytest.raises(CheckpointError, match=problem) as caught:
        load_model(path)
    assert str(path) in str(caught.value)
    if case != "entry_int_dtype_for_weights":  # the header alone is fine there: the model's dtypes decide
        assert not is_vivim_checkpoint(path)


def test_the_header_reader_stays_within_its_limits(small_checkpoint):
    header = read_safetensors_header(small_checkpoint, "checkpoint")
    assert header.metadata["format"] == "vivim-checkpoint"
    entry = header.tensors["decoder.classifier.bias"]
    assert entry.dtype == "F32" and entry.shape == (1,) and entry.nbytes == 4
    assert header.data_start + max(e.end for e in header.tensors.values()) == small_checkpoint.stat().st_size
    assert MAX_JSON_DEPTH < 100


# metadata fields and provenance ------------------------------------------------------------------------------
@pytest.mark.parametrize("metadata, problem", [
    ({"format_version": None}, "format version"),
    ({"format_version": "one"}, "format version"),
    ({"model_config": None}, "model config"),
    ({"model_config": "[]"}, "model config"),
    ({"model_config": deep(5000)}, "model config"),
    ({"model_config": "{" * 3}, "model config"),
    ({"provenance": "[1, 2]"}, "provenance"),
    ({"provenance": '{"a": ' + deep(3000) + "}"}, "provenance"),
    ({"provenance": {"train_size": [0, 0]}}, "train_size"),
    ({"provenance": {"train_size": [-64, 64]}}, "train_size"),
    ({"provenance": {"train_size": [10 ** 9, 10 ** 9]}}, "train_size"),
    ({"provenance": {"train_size": [64, 50]}}, "train_size"),
    ({"provenance": {"train_size": "64x64"}}, "train_size"),
    ({"provenance": {"train_size": [64, 64, 64]}}, "train_size"),
    ({"provenance": {"clip_length": 0}}, "clip_length"),
    ({"provenance": {"clip_length": 10 ** 9}}, "clip_length"),
    ({"provenance": {"clip_length": "5"}}, "clip_length"),
    ({"provenance": {"clip_length": 2.5}}, "clip_length"),
    ({"provenance": {"step": -3}}, "step"),
    ({"provenance": {"val_dice": 7}}, "val_dice"),
    ({"provenance": {"kind": ["train"]}}, "kind"),
])
def test_metadata_and_provenance_values_are_validated(small_checkpoint, tmp_path, metadata, problem):
    bad = altered(small_checkpoint, tmp_path / "bad.safetensors", metadata)
    with pytest.raises(CheckpointError, match=problem) as caught:
        read_checkpoint_info(bad)
    assert str(bad) in str(caught.value)
    with pytest.raises(CheckpointError):
        load_model(bad)


def test_a_valid_checkpoint_reads_without_torch_in_a_fresh_process(small_checkpoint):
    import subprocess
    import sys

    code = ("import sys; from vivim_core.checkpoint_header import read_checkpoint_info; "
            f"info = read_checkpoint_info({str(small_checkpoint)!r}); "
            "assert info['provenance']['train_size'] == [64, 64] and info['config'].variant == 'vivim-tiny'; "
            "assert 'torch' not in sys.modules, 'the header reader imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))


def test_the_cli_reports_a_bad_checkpoint_in_one_line(small_checkpoint, tmp_path, capsys):
    bad = altered(small_checkpoint, tmp_path / "bad.safetensors",
                  {"model_config": config_with(small_checkpoint, decoder_dim=-1)})
    frames = tmp_path / "video"
    frames.mkdir()
    import cv2
    import numpy as np

    for i in range(3):
        cv2.imwrite(str(frames / f"{i:04d}.png"), np.full((32, 32, 3), 40 * i, np.uint8))
    code = main(["predict", str(frames), "--checkpoint", str(bad), "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and str(bad) in err and "decoder_dim" in err
    assert not (tmp_path / "out").exists()
