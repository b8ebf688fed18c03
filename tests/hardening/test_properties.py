"""Property-based tests of the readers (round trips of frames and masks through write and read, any
size, odd names) and of the mask operations and undo (any sequence of edits)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vivim_core.data.readers import image_size, list_images, read_frame, read_mask, write_frame, write_mask
from vivim_studio.document import VideoDocument, codec, mask_ops, open_source

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

SIZES = st.tuples(st.integers(1, 40), st.integers(1, 40))
NAME_CHARS = st.characters(exclude_categories=("Cs", "Cc"), exclude_characters='/\\:*?"<>|\x00')
NAMES = st.text(NAME_CHARS, min_size=1, max_size=12).map(str.strip).filter(
    lambda n: n and not n.startswith(".") and n not in (".", "..") and len(n.encode()) < 100)


def masks(size=None):
    shape = st.just(size) if size else SIZES
    return shape.flatmap(lambda s: arrays(np.bool_, s))


# readers -----------------------------------------------------------------------------------------------------
@FAST
@given(frame=SIZES.flatmap(lambda s: arrays(np.uint8, (*s, 3))), name=NAMES)
def test_frames_round_trip_through_png_at_any_size_and_name(frame, name):
    with tempfile.TemporaryDirectory() as folder:
        path = write_frame(Path(folder) / f"{name}.png", frame)
        assert list_images(Path(folder)) == [path]
        assert image_size(path) == frame.shape[:2]
        assert np.array_equal(read_frame(path), frame)


@FAST
@given(mask=masks(), name=NAMES, encoding=st.sampled_from(["bool", "0-255", "0-1", "16-bit", "grey-rgb"]))
def test_masks_round_trip_in_every_accepted_encoding(mask, name, encoding):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.png"
        if encoding == "bool":
            write_mask(path, mask)
            assert set(np.unique(cv2.imread(str(path), cv2.IMREAD_UNCHANGED))) <= {0, 255}
        else:
            image = {"0-255": mask.astype(np.uint8) * 255, "0-1": mask.astype(np.uint8),
                     "16-bit": mask.astype(np.uint16) * 65535,
                     "grey-rgb": np.repeat(mask.astype(np.uint8)[..., None] * 255, 3, axis=2)}[encoding]
            assert cv2.imwrite(str(path), image)
        back = read_mask(path)
        assert back.dtype == bool and np.array_equal(back, mask)


@FAST
@given(numbers=st.lists(st.integers(0, 10**6), min_size=1, max_size=12, unique=True),
       prefix=st.sampled_from(["", "frame_", "IMG "]), pad=st.booleans(), suffix=st.sampled_from([".png", ".jpg"]))
def test_frame_folders_read_in_integer_order_with_identical_pixels(numbers, prefix, pad, suffix):
    rng = np.random.default_rng(len(numbers))
    frames = np.stack([np.full((6, 5, 3), 10 + 20 * i, np.uint8) for i in range(len(numbers))])
    if suffix == ".png":  # lossless: any pixels
        frames = rng.integers(0, 256, frames.shape, dtype=np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        for number, frame in zip(numbers, frames):
            write_frame(Path(folder) / (f"{prefix}{number:07d}{suffix}" if pad else f"{prefix}{number}{suffix}"), frame)
        listed = list_images(Path(folder))
        assert [int(p.stem[len(prefix):]) for p in listed] == sorted(numbers)
        with open_source(Path(folder), load_ground_truth=False) as source:
            assert source.num_frames == len(numbers)
            for position, index in enumerate(np.argsort(numbers)):
                got = source.frame(position)
                if suffix == ".png":
                    assert np.array_equal(got, frames[index])
                else:  # JPEG is lossy: the right frame (each has its own flat colour), not its exact pixels
                    assert np.abs(got.astype(int) - frames[index]).max() <= 4


@FAST
@given(mask=masks())
def test_workspace_mask_codec_round_trips_and_any_truncation_is_detected(mask):
    data = codec.encode_mask(mask)
    assert codec.check_png(data) == mask.shape
    assert np.array_equal(codec.decode_mask(data, mask.shape), mask)
    for cut in sorted({1, 8, 24, len(data) // 2, len(data) - 1}):
        try:
            codec.check_png(data[:cut])
        except codec.CodecError:
            continue
        raise AssertionError(f"a PNG cut to {cut} of {len(data)} bytes passed the check")


# mask operations ---------------------------------------------------------------------------------------------
def components(mask):
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return [labels == k for k in range(1, count)]


@FAST
@given(mask=masks())
def test_fill_holes_is_idempotent_and_only_adds(mask):
    once = mask_ops.fill_holes(mask)
    assert np.array_equal(mask_ops.fill_holes(once), once)
    assert not (mask & ~once).any()


@FAST
@given(mask=masks())
def test_keep_largest_returns_a_subset_with_one_component_of_the_largest_area(mask):
    kept = mask_ops.keep_largest_component(mask)
    assert not (kept & ~mask).any()
    if not mask.any():
        assert not kept.any()
        return
    assert len(components(kept)) == 1
    assert kept.sum() == max(c.sum() for c in components(mask))


@FAST
@given(mask=masks(), min_pixels=st.integers(0, 30))
def test_remove_small_islands_keeps_exactly_the_big_components(mask, min_pixels):
    kept = mask_ops.remove_small_islands(mask, min_pixels)
    expected = np.zeros_like(mask)
    for component in components(mask):
        if component.sum() >= min_pixels:
            expected |= component
    assert np.array_equal(kept, expected)


POINTS = st.lists(st.tuples(st.floats(-60, 100, allow_nan=False), st.floats(-60, 100, allow_nan=False)),
                  min_size=3, max_size=8)


@FAST
@given(size=SIZES, points=POINTS, base=st.booleans())
def test_polygon_add_then_subtract_leaves_the_mask_without_the_polygon(size, points, base):
    start = np.zeros(size, bool)
    if base:
        start[: size[0] // 2] = True
    added = mask_ops.polygon(start, points)
    removed = mask_ops.polygon(added, points, subtract=True)
    assert not (start & ~added).any() and not (removed & ~start).any()
    if not base:
        assert not removed.any()  # on an empty mask: empty again


@FAST
@given(size=SIZES, points=st.lists(st.tuples(st.floats(-500, 500, allow_nan=False),
                                             st.floats(-500, 500, allow_nan=False)), min_size=1, max_size=6),
       radius=st.floats(0, 30), erase=st.booleans(), fill=st.booleans())
def test_strokes_never_paint_outside_the_frame_or_their_reported_box(size, points, radius, erase, fill):
    buffer = np.full(size, 1 if fill else 0, np.uint8)
    before = buffer.copy()
    box = mask_ops.paint_polyline(buffer, points, radius, 0 if erase else 1)
    assert buffer.shape == size and set(np.unique(buffer)) <= {0, 1}
    changed = buffer != before
    if box is None:
        assert not changed.any()
        return
    x0, y0, x1, y1 = box
    assert 0 <= x0 < x1 <= size[1] and 0 <= y0 < y1 <= size[0]
    outside = changed.copy()
    outside[y0:y1, x0:x1] = False
    assert not outside.any()


EDITS = st.lists(st.one_of(
    st.tuples(st.just("stroke"), st.integers(-5, 30), st.integers(-5, 30), st.integers(0, 6), st.booleans()),
    st.tuples(st.just("polygon"), st.lists(st.tuples(st.integers(-5, 30), st.integers(-5, 30)), min_size=3,
                                           max_size=5), st.booleans()),
    st.sampled_from([("fill_holes",), ("keep_largest",), ("smooth",), ("clear",), ("accept",), ("copy_other",)]),
    st.tuples(st.just("islands"), st.integers(1, 20))), min_size=1, max_size=12)


@FAST
@given(initial=masks((24, 24)), other=masks((24, 24)), edits=EDITS)
def test_undoing_every_edit_restores_the_exact_mask_and_redo_replays_them(initial, other, edits):
    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "v"
        for i in range(2):
            write_frame(video / f"{i}.png", np.full((24, 24, 3), 60 * i, np.uint8))
        with VideoDocument.open(video, Path(folder) / "ws") as doc:
            doc.set_mask(0, initial)
            doc.set_mask(1, other)
            start = (doc.mask(0).copy(), doc.record(0))
            steps = 0
            for edit in edits:
                kind = edit[0]
                changed = {"stroke": lambda: doc.paint_stroke(0, [edit[1:3]], edit[3], erase=edit[4]),
                           "polygon": lambda: doc.add_polygon(0, edit[1], subtract=edit[2]),
                           "fill_holes": lambda: doc.fill_holes(0),
                           "keep_largest": lambda: doc.keep_largest_component(0),
                           "smooth": lambda: doc.smooth(0, 2), "clear": lambda: doc.clear(0),
                           "accept": lambda: doc.accept(0), "copy_other": lambda: doc.copy_mask_from(0, 1),
                           "islands": lambda: doc.remove_small_islands(0, edit[1])}[kind]()
                steps += bool(changed)
            end = (doc.mask(0).copy(), doc.record(0).status)
            for _ in range(steps):
                assert doc.undo(0) is not None
            assert np.array_equal(doc.mask(0), start[0]) and doc.record(0) == start[1]
            for _ in range(steps):
                assert doc.redo(0) is not None
            assert np.array_equal(doc.mask(0), end[0]) and doc.record(0).status == end[1]
            assert np.array_equal(doc.mask(1), other)  # the other frame never moved
        with VideoDocument.open(video, Path(folder) / "ws") as doc:  # and the workspace holds exactly that
            assert np.array_equal(doc.mask(0), end[0]) and doc.status(0) == end[1]
