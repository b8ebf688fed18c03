"""Property-based tests of the export (`export_document` and `vivim-studio export`): random output paths,
split names, video ids, formats, selections, sizes and source metadata. Whatever comes in, nothing outside
the chosen output folder changes (the video and its workspace least of all), and a failure is a clear
`VivimError` (exit code 2 with one `error:` line on the command line): never another exception, never a hang.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from hardening_support import make_frames, run_cli, snapshot, write_images
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from vivim_core.errors import VivimError
from vivim_core.file_safety import is_within, real
from vivim_studio.cli import main as studio
from vivim_studio.document import VideoDocument
from vivim_studio.document.export import ExportOptions, export_document

EXAMPLES = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
HANG_S = 60  # far beyond what one tiny export takes: reaching it means something waits forever

ODD = ["..", ".", "", " ", "/", "\\", "\x00", "\n", "-", "--out", "~", "C:", "con", "nul.txt", ".vivim-export-1-0",
       "Train_GT", "manifests", "\ud800", "\udc80", "\u202e", "甲状腺", "a" * 300, "é", "e\u0301"]
PARTS = st.one_of(st.sampled_from(ODD), st.text(st.characters(blacklist_categories=("Cs",)), max_size=12))
METADATA_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
              st.text(max_size=8), st.binary(max_size=4)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6)
METADATA = st.dictionaries(st.one_of(st.sampled_from(["pixel_spacing_mm", "codec", "modality"]), st.text(max_size=6)),
                           METADATA_VALUES, max_size=4)
USUAL = st.sampled_from(["Train", "Test", "case 1", "甲状腺", "clip.v2"])
NAMES = st.one_of(USUAL, USUAL, PARTS)  # usual names twice as often: most examples get as far as writing
SIZES = st.one_of(st.none(), st.none(), st.tuples(st.integers(-2, 40), st.integers(-2, 40)),
                  st.tuples(st.just(10**6), st.just(10**6)))


@contextlib.contextmanager
def no_hang(seconds: int = HANG_S):
    """Fail (TimeoutError) instead of waiting forever (POSIX; elsewhere the suite's own timeout applies)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def hung(*_):
        raise TimeoutError(f"the export still ran after {seconds} s")
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    """A tiny reviewed video and its workspace, and a sandbox (beside them) the outputs go into."""
    base = tmp_path_factory.mktemp("export-properties")
    video = write_images(base / "inputs" / "video", make_frames(3, 16, 24)[0])
    with VideoDocument.open(video, base / "inputs" / "ws") as doc:
        doc.set_mask(0, np.ones((16, 24), bool))
        doc.accept(0)
        doc.set_proposal(1, np.full((16, 24), 0.9, np.float32), model="5" * 64)
        doc.paint_stroke(2, [(3, 3)], 2)
    return base, video, base / "inputs" / "ws"


_runs = itertools.count()


def output_folder(sandbox: Path, parts: list[str]) -> Path | None:
    """sandbox/<n>/parts... as the user typed it; None when it would climb out of the sandbox (a user may
    choose any folder, but the test only watches the sandbox)."""
    run = sandbox / str(next(_runs))
    run.mkdir(parents=True)
    out = run.joinpath(*parts) if parts else run / "out"
    try:
        inside = is_within(out, run) and real(out) != real(run)
    except (ValueError, UnicodeError):  # a NUL or an unencodable character: the export must refuse it
        inside = True
    return out if inside else None


def check_only_output_changed(before: dict, after: dict, sandbox: Path, out: Path) -> None:
    try:
        out_real = real(out)
    except (ValueError, UnicodeError):
        out_real = None
    for name in set(before) | set(after):
        if before.get(name, "absent") == after.get(name, "absent"):
            continue
        path = real(sandbox / name)
        allowed = out_real is not None and (is_within(path, out_real)
                                            or (after.get(name) is None and out_real.is_relative_to(path)))
        assert allowed, f"{sandbox / name} changed, outside the export folder {out}"


def inputs_snapshot(setting):
    base, video, workspace = setting
    return snapshot(video), snapshot(workspace)


@EXAMPLES
@given(parts=st.lists(NAMES, max_size=3), split=NAMES, video_id=st.one_of(st.none(), NAMES),
       format=st.sampled_from(["vtus", "vtus", "png", "nifti", "jpeg"]),
       selection=st.sampled_from(["reviewed", "reviewed", "accepted", "all", "some"]), size=SIZES, metadata=METADATA)
def test_export_document_never_writes_outside_the_output(setting, parts, split, video_id, format, selection, size,
                                                         metadata):
    base, video, workspace = setting
    sandbox = base / "api"
    out = output_folder(sandbox, parts)
    if out is None:
        return
    inputs, before = inputs_snapshot(setting), snapshot(sandbox)
    with VideoDocument.open_workspace(workspace, read_only=True) as doc:
        doc.source.metadata = metadata
        options = ExportOptions(format=format, split=split, selection=selection, size=size, video_id=video_id)
        try:
            with no_hang():
                result = export_document(doc, out, options)
        except VivimError as exc:
            assert str(exc).strip(), "an error without a message"
            event(f"refused: {type(exc).__name__}")
        else:
            event("exported")
            assert all(is_within(p, out) for p in [*result.outputs, result.manifest_path])
            assert result.manifest["source"]["identity"] == doc.workspace.identity.digest
            if selection != "all":
                assert result.manifest["unreviewed_frames"] == []
            assert not any(isinstance(v, float) and not math.isfinite(v)
                           for v in _leaves(result.manifest["source"]["metadata"]))
    check_only_output_changed(before, snapshot(sandbox), sandbox, out)
    assert inputs_snapshot(setting) == inputs


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


@EXAMPLES
@given(parts=st.lists(NAMES, max_size=3), split=st.one_of(st.none(), NAMES), video_id=st.one_of(st.none(), NAMES),
       format=st.sampled_from(["vtus", "png", "nifti"]),
       selection=st.sampled_from([[], ["--only-accepted"], ["--include-unreviewed-proposals"]]),
       size=st.one_of(st.none(), st.sampled_from(["8x8", "0x5", "x", "-3x4", "99999999x1"])))
def test_export_command_fails_only_with_a_clear_message(setting, capsys, parts, split, video_id, format, selection,
                                                         size):
    base, video, workspace = setting
    sandbox = base / "cli"
    out = output_folder(sandbox, parts)
    if out is None:
        return
    argv = ["export", str(workspace), f"--out={out}", f"--format={format}", *selection]
    argv += [f"--split={split}"] if split is not None else []
    argv += [f"--video-id={video_id}"] if video_id is not None else []
    argv += [f"--size={size}"] if size is not None else []
    inputs, before = inputs_snapshot(setting), snapshot(sandbox)
    with no_hang():
        code, _, err = run_cli(studio, argv, capsys)
    assert code in (0, 2), f"exit code {code}: {err}"
    event(f"exit {code}")
    assert "Traceback" not in err, err
    if code == 2:
        assert [line for line in err.splitlines() if "error:" in line], err
    check_only_output_changed(before, snapshot(sandbox), sandbox, out)
    assert inputs_snapshot(setting) == inputs
