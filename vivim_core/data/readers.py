"""Reading frames, masks and video files, with errors that name the file and say what to do.

Accepted mask encodings (`read_mask`), all returned as a bool (H, W) array:
  * 8-bit, single channel, values in {0, 255}: the VTUS convention;
  * 8-bit values in {0, 1}, or 16-bit values in {0, 1}, {0, 255} or {0, 65535}: accepted, logged once per folder
    (INFO);
  * RGB / RGBA / palette images whose colour channels are identical (a grey mask saved as colour): accepted;
  * anything else (other values, e.g. JPEG-compressed masks; colour labels) is a `DataError` naming the file
    and the values found.
Paths are decoded through `np.fromfile` + `cv2.imdecode` so that non-ASCII paths work on Windows too.

Images and videos are untrusted: an image's size is read from its header and refused above MAX_IMAGE_PIXELS
before it is decoded (a small PNG can decode to gigabytes), files that are not regular (a FIFO named .png) or
larger than MAX_IMAGE_BYTES are refused, and a video's announced frame count and resolution are capped
(MAX_VIDEO_FRAMES, MAX_IMAGE_PIXELS) before anything is allocated for them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ..errors import VivimError
from ..file_safety import UnsafePathError, regular_file

log = logging.getLogger(__name__)

MAX_IMAGE_PIXELS = 100_000_000  # per image or video frame (a 10000x10000 scan; 4K video is 8.3 million)
MAX_IMAGE_BYTES = 2**30  # an image file's size on disk
MAX_VIDEO_FRAMES = 1_000_000  # about 9 hours at 30 frames/s

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".webm")

_logged_mask_folders: set[tuple[str, str]] = set()


class DataError(VivimError, ValueError):
    """A dataset, image, mask or video the user has to fix (the message names the file and the problem)."""


def natural_key(path: Path | str) -> tuple:
    """Sort key that orders `2.jpg` before `10.jpg` (integer runs compared as numbers)."""
    name = Path(path).name
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.lower())
                 for part in re.split(r"(\d+)", name) if part)


def list_images(folder: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Path]:
    """Image files directly inside `folder` (hidden files skipped), in natural order."""
    return sorted((p for p in Path(folder).iterdir()
                   if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith(".")),
                  key=natural_key)


def _checked_file(path: Path) -> Path:
    """`path` when it is a non-empty regular file of at most MAX_IMAGE_BYTES; DataError naming it otherwise."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    try:
        regular_file(path, "image", MAX_IMAGE_BYTES)
    except UnsafePathError as exc:
        raise DataError(str(exc)) from None
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes); re-export or delete it")
    return path


def check_pixel_count(path: Path | str, width: int, height: int, what: str = "image") -> None:
    """DataError when an image (or video frame) of width x height exceeds MAX_IMAGE_PIXELS."""
    if width * height > MAX_IMAGE_PIXELS:
        raise DataError(f"{path}: the {what} has {width * height:,} pixels ({width}x{height}), more than the "
                        f"{MAX_IMAGE_PIXELS:,} accepted (a damaged file, or a decompression bomb); reduce it or "
                        f"remove it")


_UNDECODABLE = "{path}: cannot decode this image (corrupt, truncated or not an image); re-export it as PNG or JPEG"


def _header_size(path: Path, source) -> tuple[int, int]:
    """(H, W) from the image header of `source` (a path or a file object), checked against MAX_IMAGE_PIXELS."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                width, height = image.size
    except Image.DecompressionBombError:  # Pillow's own, higher limit: the header says even more pixels
        raise DataError(f"{path}: the image has more than {2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels, more than "
                        f"the {MAX_IMAGE_PIXELS:,} accepted (a damaged file, or a decompression bomb); reduce it "
                        f"or remove it") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        if not isinstance(source, (str, Path)):
            raise DataError(_UNDECODABLE.format(path=path)) from None
        raise DataError(f"{path}: cannot read this image's header ({exc}); the file is corrupt or not an "
                        f"image: re-export it, or remove it from the folder") from None
    check_pixel_count(path, width, height)
    return height, width


def _decode(path: Path, flags: int) -> np.ndarray:
    import io

    path = _checked_file(Path(path))
    data = np.fromfile(path, dtype=np.uint8)
    _header_size(path, io.BytesIO(data.tobytes()))  # before decoding: a small file can decode to gigabytes
    image = cv2.imdecode(data, flags)
    if image is None:
        raise DataError(_UNDECODABLE.format(path=path))
    return image


def read_frame(path: Path | str) -> np.ndarray:
    """A video frame as uint8 (H, W, 3) RGB. Grey images are replicated to 3 channels, 16-bit scaled to 8-bit."""
    image = _decode(Path(path), cv2.IMREAD_COLOR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def image_size(path: Path | str) -> tuple[int, int]:
    """(H, W) of an image from its header only (no decoding); DataError above MAX_IMAGE_PIXELS."""
    path = _checked_file(Path(path))
    return _header_size(path, path)


def _single_channel(image: np.ndarray, path: Path) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        colour = image[:, :, :3]
        if not (np.array_equal(colour[:, :, 0], colour[:, :, 1]) and np.array_equal(colour[:, :, 0], colour[:, :, 2])):
            raise DataError(f"{path}: mask has colour (its RGB channels differ); masks must be single-channel "
                            f"images with values 0 (background) and 255 (lesion)")
        return colour[:, :, 0]
    raise DataError(f"{path}: unsupported mask shape {image.shape}; expected a single-channel image")


def _describe_values(values: np.ndarray) -> str:
    shown = ", ".join(str(int(v)) for v in values[:8])
    return f"{{{shown}{', ...' if len(values) > 8 else ''}}} ({len(values)} distinct values)"


def read_mask(path: Path | str) -> np.ndarray:
    """A binary lesion mask as bool (H, W). See the module docstring for the accepted encodings."""
    path = Path(path)
    image = _single_channel(_decode(path, cv2.IMREAD_UNCHANGED), path)
    values = set(np.unique(image).tolist())
    if image.dtype == np.uint8 and values <= {0, 255}:
        return image == 255
    if image.dtype in (np.uint8, np.uint16):
        for high in (1, 255, 65535):
            if values <= {0, high}:
                _log_encoding_once(path, f"{image.dtype} {{0, {high}}}")
                return image == high
    raise DataError(f"{path}: mask is not binary: {image.dtype} values {_describe_values(np.unique(image))}; "
                    f"expected 8-bit {{0, 255}} (or {{0, 1}}). Masks saved as JPEG get compression noise: "
                    f"save masks as PNG")


def _log_encoding_once(path: Path, encoding: str) -> None:
    key = (str(path.parent), encoding)
    if key not in _logged_mask_folders:
        _logged_mask_folders.add(key)
        log.info("%s: masks encoded as %s, read as binary (the VTUS convention is 8-bit {0, 255})",
                 path.parent, encoding)


def write_mask(path: Path | str, mask: np.ndarray) -> Path:
    """Write a bool/{0,1}/{0,255} (H, W) mask as an 8-bit {0, 255} PNG (the VTUS convention)."""
    path = Path(path)
    encoded = np.where(np.asarray(mask) > 0, 255, 0).astype(np.uint8)
    ok, data = cv2.imencode(".png", encoded)
    if not ok:
        raise DataError(f"{path}: could not encode the mask as PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    data.tofile(path)
    return path


def write_frame(path: Path | str, frame: np.ndarray, jpeg_quality: int = 95) -> Path:
    """Write a uint8 (H, W, 3) RGB frame; the format follows the suffix (.jpg or .png)."""
    path = Path(path)
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if path.suffix.lower() in (".jpg", ".jpeg") else []
    ok, data = cv2.imencode(path.suffix, cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise DataError(f"{path}: could not encode the frame (unsupported suffix {path.suffix!r}?)")
    path.parent.mkdir(parents=True, exist_ok=True)
    data.tofile(path)
    return path


class VideoFileReader:
    """Lazy reader of a video file (anything OpenCV's FFmpeg can decode): frames as uint8 (H, W, 3) RGB.

    Opening checks that the file exists, is a non-empty regular file, can be opened, announces at most
    MAX_VIDEO_FRAMES frames of at most MAX_IMAGE_PIXELS pixels, and that its first frame decodes (its decoded
    size is the video's size: rotation metadata can make it differ from the container's). `num_frames` is the
    container's frame count (counted by decoding when the container does not say). Iterating checks what was
    decoded: a frame of another size, or a stream that ends before `num_frames`, is a `DataError` naming the file
    and the frame; a frame beyond `num_frames` is noticed (`unread_frames` 1, `unread_warning`) and logged as a
    warning.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if not self.path.exists():
            raise DataError(f"{self.path}: video file not found")
        try:
            regular_file(self.path, "video file")
        except UnsafePathError as exc:
            raise DataError(str(exc)) from None
        if self.path.stat().st_size == 0:
            raise DataError(f"{self.path}: the video file is empty (0 bytes); copy or export it again")
        self.unread_frames = 0  # 1 when the last complete iteration found a frame after the announced count
        capture = self._open()
        try:
            announced = capture.get(cv2.CAP_PROP_FRAME_COUNT)
            count = int(announced) if announced and np.isfinite(announced) and announced > 0 else 0
            self._check_count(count)
            header_width, header_height = (capture.get(cv2.CAP_PROP_FRAME_WIDTH),
                                           capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
            if np.isfinite(header_width) and np.isfinite(header_height):
                check_pixel_count(self.path, int(header_width), int(header_height), "video frame")
            ok, first = capture.read()
            if not ok or first is None:
                raise DataError(f"{self.path}: no frame could be decoded: the codec is unsupported or the file is "
                                f"corrupt; convert it, e.g. `ffmpeg -i {self.path.name} -c:v libx264 out.mp4`")
            self.height, self.width = first.shape[:2]
            check_pixel_count(self.path, self.width, self.height, "video frame")
            fps = capture.get(cv2.CAP_PROP_FPS)
            self.fps: float | None = float(fps) if fps and np.isfinite(fps) and fps > 0 else None
            if count <= 0:
                count = 1 + self._count_remaining(capture)
            self.num_frames = count
        finally:
            capture.release()

    def _check_count(self, count: int) -> None:
        if count > MAX_VIDEO_FRAMES:
            raise DataError(f"{self.path}: the video announces {count:,} frames, more than the {MAX_VIDEO_FRAMES:,} "
                            f"accepted (a damaged header, or a stream that never ends); re-encode it, e.g. `ffmpeg "
                            f"-i {self.path.name} -c:v libx264 out.mp4`, or cut it into parts")

    def _count_remaining(self, capture: cv2.VideoCapture) -> int:
        """Frames left in the stream (grabbed, not converted), refused past MAX_VIDEO_FRAMES."""
        remaining = 0
        while capture.grab():
            remaining += 1
            self._check_count(remaining)
        return remaining

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            raise DataError(f"{self.path}: OpenCV cannot open this video (unsupported container or codec, or not a "
                            f"video); convert it, e.g. `ffmpeg -i {self.path.name} -c:v libx264 out.mp4`, or "
                            f"export its frames as a folder of images")
        return capture

    @property
    def frame_size(self) -> tuple[int, int]:
        """(H, W) of every frame."""
        return self.height, self.width

    def __len__(self) -> int:
        return self.num_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        capture = self._open()
        try:
            for index in range(self.num_frames):
                ok, frame = capture.read()
                if not ok or frame is None:
                    raise DataError(f"{self.path}: the video ended after {index} of the {self.num_frames} frames its "
                                    f"container announces (truncated or damaged file); re-encode it, e.g. `ffmpeg "
                                    f"-i {self.path.name} -c:v libx264 out.mp4`, or export its frames as images")
                if frame.shape[:2] != (self.height, self.width):
                    raise DataError(f"{self.path}: frame {index} is {frame.shape[1]}x{frame.shape[0]}, the first "
                                    f"frame {self.width}x{self.height}; re-encode the video at one size")
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            self.unread_frames = int(capture.grab())  # one more frame is enough to know (and costs one decode)
            if self.unread_frames:
                log.warning("%s", self.unread_warning)
        finally:
            capture.release()

    @property
    def unread_warning(self) -> str:
        """What to tell the user when the stream held more frames than its container announced ('' if not)."""
        if not self.unread_frames:
            return ""
        return (f"{self.path}: the video holds more than the {self.num_frames} frames its container announces; "
                f"only those {self.num_frames} were read. Re-encode it to use them all, e.g. `ffmpeg -i "
                f"{self.path.name} -c:v libx264 out.mp4`")

    def read_all(self) -> np.ndarray:
        """Every frame at once: uint8 (T, H, W, 3) RGB."""
        frames = list(self)
        return np.stack(frames) if frames else np.zeros((0, self.height, self.width, 3), np.uint8)
