"""Sizes a source's header may claim before anything is decoded: a crafted image or video header (a few bytes
claiming 40,000 x 40,000 pixels, a "decompression bomb") must be refused before the decoder allocates memory
for it. Frame files are measured from their header (`frame_header_size`) before each decode.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from vivim_core.data.readers import DataError, image_size

from ..exceptions import SourceError

MAX_FRAME_PIXELS = 1 << 26  # 67 megapixels: twice 8K UHD; a medical video frame is far below


def check_frame_pixels(path: Path, height: int, width: int, what: str = "frames") -> None:
    """SourceError when a header claims frames of no pixels or of more than MAX_FRAME_PIXELS."""
    if height < 1 or width < 1:
        raise SourceError(f"{path}: the header claims {what} of {width}x{height} pixels; the file is damaged or "
                          f"not a video")
    if height * width > MAX_FRAME_PIXELS:
        raise SourceError(f"{path}: the header claims {what} of {width}x{height} pixels ({height * width:,}), more "
                          f"than the {MAX_FRAME_PIXELS:,} Vivim Studio decodes (a damaged or crafted file?); it was "
                          f"not decoded. Re-export the video at a usual size")


def frame_header_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image file from its header, checked against MAX_FRAME_PIXELS (SourceError otherwise)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():  # sizes Pillow only warns about are refused below, by the same rule
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            height, width = image_size(path)
    except DataError as exc:
        raise SourceError(str(exc)) from None
    except Image.DecompressionBombError as exc:  # Pillow's own limit, hit while reading the header
        raise SourceError(f"{path}: the image header claims an enormous size ({exc}); it was not decoded. "
                          f"Re-export the frame at a usual size, or remove it from the folder") from None
    check_frame_pixels(path, height, width, "an image")
    return height, width
