"""The fast mask decoder (`fast_png`) gives exactly what OpenCV gives, and leaves anything else to OpenCV."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest

from vivim_studio.document import codec
from vivim_studio.document.fast_png import decode_bilevel


@pytest.mark.parametrize("shape", [(1, 1), (7, 9), (33, 64), (48, 65), (1080, 1920)])
def test_our_masks_decode_exactly_as_opencv_decodes_them(shape):
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    for density in (0.0, 0.02, 0.5, 1.0):
        mask = rng.random(shape) < density
        data = codec.encode_mask(mask)
        fast = decode_bilevel(data)
        reference = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE) > 127
        assert fast is not None and np.array_equal(fast, reference) and np.array_equal(fast, mask)


def test_other_pngs_and_damaged_ones_go_to_opencv():
    mask = np.random.default_rng(0).random((20, 30)) < 0.4
    grey = cv2.imencode(".png", mask.astype(np.uint8) * 255)[1].tobytes()  # 8-bit: not ours, OpenCV decodes it
    assert decode_bilevel(grey) is None and np.array_equal(codec.decode_mask(grey), mask)
    Image = pytest.importorskip("PIL.Image")
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG")  # 1-bit with other row filters, maybe
    assert np.array_equal(codec.decode_mask(buffer.getvalue()), mask)
    data = bytearray(codec.encode_mask(mask))
    data[60] ^= 0xFF  # a flipped byte inside the compressed data: the chunk checksum catches it
    assert decode_bilevel(bytes(data)) is None
    for cut in (10, 40, len(data) - 3):
        with pytest.raises(codec.CodecError):
            codec.decode_mask(codec.encode_mask(mask)[:cut])


def test_our_encoder_writes_standard_pngs_that_other_readers_open():
    mask = np.random.default_rng(1).random((37, 50)) < 0.3
    data = codec.encode_mask(mask)
    assert codec.check_png(data) == (37, 50)
    Image = pytest.importorskip("PIL.Image")
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == "1" and np.array_equal(np.asarray(image), mask)
    assert np.array_equal(codec.decode_mask(codec.encode_mask(mask.astype(np.uint8) * 255)), mask)
    for bad in (np.zeros((0, 4), bool), np.zeros((3, 4, 2), bool)):
        with pytest.raises(codec.CodecError, match="shape"):
            codec.encode_mask(bad)
