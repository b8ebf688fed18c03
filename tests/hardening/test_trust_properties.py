"""Properties of vivim-core under untrusted input: random folder and file names, random output paths, random
checkpoint headers, configs, provenance and tensor entries. Whatever comes in, every failure is a VivimError
(the CLI: exit code 2), nothing hangs, and nothing outside the sandbox folder (the only place outputs may go)
changes: the inputs, the checkpoint and decoy files beside them stay as they were."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from vivim_core.checkpoint_header import is_vivim_checkpoint, read_checkpoint_info
from vivim_core.cli import main
from vivim_core.config import ModelConfig
from vivim_core.engine.checkpoint import load_model, save_checkpoint
from vivim_core.errors import VivimError
from vivim_core.model import build_model

SETTINGS = settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

# any name a Linux file system accepts (what arrives from a colleague's disk), dots and odd characters included
NAMES = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="/\x00"), min_size=1,
                max_size=24).filter(lambda n: n not in (".", "..") and len(n.encode()) < 200)
JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True)
                    | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                max_size=4), max_leaves=12)


def files_of(root: Path, skip: Path | None = None) -> dict[str, bytes | str | None]:
    """Every entry under `root` but those under `skip`: file bytes, a link's target, None for a folder."""
    found = {}
    for path in sorted(root.rglob("*")):
        if skip is not None and (path == skip or skip in path.parents):
            continue
        key = path.relative_to(root).as_posix()
        found[key] = ("->" + os.readlink(path)) if path.is_symlink() else (path.read_bytes() if path.is_file()
                                                                          else None)
    return found


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """outer/ holds the sandbox (where outputs may go), a small checkpoint, decoy files and the inputs."""
    outer = tmp_path_factory.mktemp("outer")
    torch.manual_seed(0)
    model = build_model("vivim-tiny", embed_dims=(8, 16, 32, 64), transformer_depths=(1,) * 4,
                        temporal_depths=(1, 0, 0, 1), num_heads=(1,) * 4, decoder_dim=32, boundary_head_dim=8)
    checkpoint = save_checkpoint(model, outer / "models" / "small.safetensors",
                                 provenance={"kind": "train", "train_size": [32, 32], "clip_length": 2, "step": 3})
    decoys = outer / "decoys"
    decoys.mkdir()
    cv2.imwrite(str(decoys / "mask.png"), np.full((8, 8), 255, np.uint8))
    (decoys / "notes.json").write_text('{"mine": true}')
    (outer / "sandbox").mkdir()
    (outer / "inputs").mkdir()
    return outer, checkpoint


# predict: names and output paths -------------------------------------------------------------------------
PROTECTED = ["input", "input_parent", "input_inside", "outer", "decoys", "decoy_file", "checkpoint_folder"]
OUTS = st.one_of(st.tuples(st.just("sandbox"), st.lists(NAMES, max_size=3)),
                 st.tuples(st.just("protected"), st.sampled_from(PROTECTED)))


@settings(SETTINGS, max_examples=25)
@given(video=NAMES, frames=st.lists(NAMES, min_size=1, max_size=3, unique=True), out=OUTS,
       prob_out=st.none() | st.lists(NAMES, min_size=1, max_size=2))
def test_predict_writes_only_inside_the_chosen_folder(world, video, frames, out, prob_out):
    outer, checkpoint = world
    sandbox = outer / "sandbox"
    source = outer / "inputs" / video
    shutil.rmtree(outer / "inputs")
    source.mkdir(parents=True)
    for number, stem in enumerate(frames):
        cv2.imwrite(str(source / f"{stem}.png"), np.full((32, 32, 3), 40 * number, np.uint8))
    kind, where = out
    target = sandbox.joinpath(*where) if kind == "sandbox" else {
        "input": source, "input_parent": source.parent, "input_inside": source / "pred", "outer": outer,
        "decoys": outer / "decoys", "decoy_file": outer / "decoys" / "mask.png",
        "checkpoint_folder": checkpoint.parent}[where]
    argv = ["predict", str(source), "--checkpoint", str(checkpoint), "--out", str(target), "--size", "32",
            "--no-progress"]
    if prob_out is not None:
        argv += ["--prob-out", str(sandbox.joinpath(*prob_out))]
    before = files_of(outer, skip=sandbox)
    code = main(argv)  # a VivimError returns 2; any other exception fails the test here
    event(f"{kind} --out: exit code {code}")
    assert code in (0, 2)
    if kind == "protected":
        assert code == 2, f"--out {target} outside the sandbox was accepted"
    assert files_of(outer, skip=sandbox) == before


# checkpoints: headers, configs, provenance, tensor entries -----------------------------------------------
def split(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + length]), raw[8 + length:]


CONFIG_FIELDS = sorted(ModelConfig.__dataclass_fields__) + ["unknown_field"]
METADATA_KEYS = ["format", "format_version", "model_config", "provenance", "vivim_version", "torch_version", "x"]
PROVENANCE_KEYS = ["train_size", "clip_length", "step", "epoch", "val_dice", "kind", "other"]
DTYPES = ["F32", "F16", "BF16", "F64", "I64", "I32", "U8", "BOOL", "F7", "", "f32"]
NUMBERS = st.integers(-2**66, 2**66) | st.integers(-3, 70)
MUTATIONS = st.one_of(
    st.tuples(st.just("metadata"), st.sampled_from(METADATA_KEYS), st.text(max_size=30) | JSON.map(json.dumps)),
    st.tuples(st.just("config"), st.sampled_from(CONFIG_FIELDS),
              JSON | NUMBERS | st.lists(NUMBERS, min_size=1, max_size=7)),
    st.tuples(st.just("provenance"), st.sampled_from(PROVENANCE_KEYS),
              JSON | st.lists(NUMBERS, max_size=3) | NUMBERS),
    st.tuples(st.just("entry"), st.integers(0, 10**6),
              st.fixed_dictionaries({"dtype": st.sampled_from(DTYPES), "shape": st.lists(NUMBERS, max_size=4),
                                     "data_offsets": st.lists(NUMBERS, min_size=2, max_size=2)}) | JSON),
    st.tuples(st.just("drop_entry"), st.integers(0, 10**6), st.none()),
    st.tuples(st.just("header"), st.none(), JSON),
    st.tuples(st.just("length"), st.none(), st.integers(0, 2**64 - 1)),
    st.tuples(st.just("truncate"), st.none(), st.integers(0, 10**6)),
)


def mutated(base: Path, path: Path, mutations) -> Path:
    header, data = split(base)
    length = None
    for kind, key, value in mutations:
        tensors = sorted(k for k in header if k != "__metadata__") if isinstance(header, dict) else []
        metadata = header.get("__metadata__") if isinstance(header, dict) else None
        if kind == "metadata" and isinstance(metadata, dict):
            metadata[key] = value
        elif kind in ("config", "provenance") and isinstance(metadata, dict):
            name = "model_config" if kind == "config" else "provenance"
            try:
                inner = json.loads(metadata.get(name, "{}"))
            except ValueError:
                continue
            if isinstance(inner, dict):
                inner[key] = value
                metadata[name] = json.dumps(inner)
        elif kind == "entry" and tensors:
            header[tensors[key % len(tensors)]] = value
        elif kind == "drop_entry" and tensors:
            del header[tensors[key % len(tensors)]]
        elif kind == "header":
            header = value
        elif kind == "length":
            length = value
        elif kind == "truncate":
            data = data[:value % (len(data) + 1)]
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


@settings(SETTINGS, max_examples=80)
@given(mutations=st.lists(MUTATIONS, min_size=1, max_size=3),
       shape=st.sampled_from(["file", "file", "file", "file", "fifo", "folder", "device"]))
def test_any_checkpoint_loads_or_fails_with_a_vivim_error(world, mutations, shape):
    outer, checkpoint = world
    sandbox = outer / "sandbox"
    path = sandbox / "candidate.safetensors"
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    if shape == "file":
        mutated(checkpoint, path, mutations)
    elif shape == "fifo":
        os.mkfifo(path)
    elif shape == "folder":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")
    before = files_of(outer)
    for reader in (read_checkpoint_info, load_model):
        try:
            reader(path)
            event(f"{reader.__name__}: accepted")
        except VivimError as exc:
            event(f"{reader.__name__}: {type(exc).__name__}")
            assert str(path) in str(exc), exc
    assert isinstance(is_vivim_checkpoint(path), bool)
    assert files_of(outer) == before  # reading never writes, anywhere
