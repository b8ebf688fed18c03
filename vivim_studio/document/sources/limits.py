"""Sizes a source's header may claim before anything is decoded: a crafted image or video header (a few bytes
claiming 40,000 x 40,000 pixels, a "decompression bomb") must be refused before the decoder allocates memory
for it. The limit is the core's (`vivim_core.data.readers.MAX_IMAGE_PIXELS`), so a video the Studio opens is
one `vivim-core` can train on and predict.
"""

from __future__ import annotations

from pathlib import Path

from vivim_core.data.readers import MAX_IMAGE_PIXELS, DataError, image_size

from ..exceptions import SourceError


def check_frame_pixels(path: Path, height: int, width: int, what: str = "frames") -> None:
    """SourceError when a header claims frames of no pixels or of more than MAX_IMAGE_PIXELS."""
    if height < 1 or width < 1:
        raise SourceError(f"{path}: the header claims {what} of {width}x{height} pixels; the file is damaged or "
                          f"not a video")
    if height * width > MAX_IMAGE_PIXELS:
        raise SourceError(f"{path}: the header claims {what} of {width}x{height} pixels ({height * width:,}), more "
                          f"than the {MAX_IMAGE_PIXELS:,} accepted (a damaged file, or a decompression bomb); it "
                          f"was not decoded. Re-export the video at a usual size")


def frame_header_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image file from its header (nothing decoded); SourceError above MAX_IMAGE_PIXELS."""
    try:
        return image_size(path)
    except DataError as exc:
        raise SourceError(str(exc)) from None
