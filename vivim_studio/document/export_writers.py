"""Writers of the export formats, each verifying every file right after writing it (read back from disk).

    vtus    <root>/<Split>/<video_id>/NNNN.jpg and <root>/<Split>_GT/<video_id>/NNNN.png (8-bit {0, 255})
    png     <root>/<video_id>/NNNN.png: 8-bit label maps (0 background, the lesion ids), or {0, 255}
    nifti   <root>/<video_id>.nii.gz: one uint8 volume of shape (H, W, T), streamed frame by frame: the lesion
            ids (0 background), or {0, 1}
NNNN is the source frame number (1-based, at least 4 digits), so a frame keeps its name in every export.

How lesions are written (`LESION_MODES`): "union" writes every lesion as 255 (NIfTI: 1), what `vivim-core
finetune` trains on; "labels" writes each pixel's lesion id; "separate" writes the union as "union" does and, in
the same masks folder, one sub-folder per lesion, lesion<k>/NNNN.png ({0, 255}, every exported frame, empty where
the lesion is absent). Training readers take only the files directly in a video's masks folder, so a VTUS export
with separate lesions still trains as the union; the per-lesion folders travel (and are replaced) with it.
"""

from __future__ import annotations

import gzip
import logging
import math
from pathlib import Path

import cv2
import numpy as np

from .exceptions import ExportError

JPEG_QUALITY = 95
log = logging.getLogger(__name__)


def frame_name(index: int) -> str:
    return f"{index + 1:04d}"


LESION_MODES = ("union", "labels", "separate")


def lesion_folder(lesion: int) -> str:
    return f"lesion{lesion}"


def _write_verified_png(path: Path, mask01: np.ndarray) -> None:
    """uint8 {0, 255} (H, W) PNG of a bool mask; read back and compared bit for bit."""
    _write_verified_image(path, np.where(mask01, 255, 0).astype(np.uint8))


def _write_verified_image(path: Path, image: np.ndarray) -> None:
    """uint8 (H, W) greyscale PNG, values as they are; read back and compared bit for bit."""
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ExportError(f"{path}: could not encode the mask")
    path.write_bytes(data.tobytes())
    back = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if back is None or back.dtype != np.uint8 or not np.array_equal(back, image):
        raise ExportError(f"{path}: the mask read back differs from what was written (disk or file system "
                          f"problem); nothing was exported")


def _write_verified_jpeg(path: Path, frame: np.ndarray, original: Path | None = None) -> None:
    """Write a frame as JPEG. `original`: a JPEG file holding exactly this frame, copied byte for byte
    instead of re-encoded (no second JPEG loss when a VTUS case is exported again)."""
    if original is not None:
        data = original.read_bytes()
    else:
        ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                                   [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise ExportError(f"{path}: could not encode the frame")
        data = encoded.tobytes()
    path.write_bytes(data)
    back = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    if back is None or back.shape != frame.shape:  # JPEG is lossy: check it decodes at the right size
        raise ExportError(f"{path}: the frame read back is unreadable or of the wrong size; nothing was exported")
    if original is not None and not np.array_equal(cv2.cvtColor(back, cv2.COLOR_BGR2RGB), frame):
        raise ExportError(f"{path}: the copied frame does not decode to the source frame; nothing was exported")


class _MaskFolder:
    """The masks of one video in a folder: NNNN.png per frame as the lesion mode says (see the module
    docstring); `lesion_ids`: the lesions that get a folder of their own in "separate" mode."""

    def __init__(self, masks_dir: Path, mode: str, lesion_ids: list[int]):
        self.masks_dir, self.mode, self.lesion_ids = masks_dir, mode, lesion_ids
        masks_dir.mkdir(parents=True)
        if mode == "separate":
            for lesion in lesion_ids:
                (masks_dir / lesion_folder(lesion)).mkdir()

    def write(self, name: str, labels: np.ndarray) -> None:
        if self.mode == "labels":
            _write_verified_image(self.masks_dir / f"{name}.png", labels)
            return
        _write_verified_png(self.masks_dir / f"{name}.png", labels > 0)
        if self.mode == "separate":
            for lesion in self.lesion_ids:
                _write_verified_png(self.masks_dir / lesion_folder(lesion) / f"{name}.png", labels == lesion)


class VtusWriter:
    def __init__(self, root: Path, split: str, video_id: str, mode: str = "union", lesion_ids: list[int] = ()):
        self.frames_dir = root / split / video_id
        self.masks_dir = root / f"{split}_GT" / video_id
        self.frames_dir.mkdir(parents=True)
        self._masks = _MaskFolder(self.masks_dir, mode, list(lesion_ids))
        self.outputs = [self.frames_dir, self.masks_dir]
        self.needs_frames = True

    def add(self, index: int, frame: np.ndarray | None, labels: np.ndarray, original: Path | None = None) -> str:
        """`labels`: the frame's label map uint8 (H, W)."""
        name = frame_name(index)
        _write_verified_jpeg(self.frames_dir / f"{name}.jpg", frame, original)
        self._masks.write(name, labels)
        return name

    def close(self) -> None:
        pass


class PngWriter:
    def __init__(self, root: Path, video_id: str, mode: str = "labels", lesion_ids: list[int] = ()):
        self.masks_dir = root / video_id
        self._masks = _MaskFolder(self.masks_dir, mode, list(lesion_ids))
        self.outputs = [self.masks_dir]
        self.needs_frames = False

    def add(self, index: int, frame: np.ndarray | None, labels: np.ndarray, original: Path | None = None) -> str:
        name = frame_name(index)
        self._masks.write(name, labels)
        return name

    def close(self) -> None:
        pass


def valid_spacing(spacing_mm, path: Path) -> tuple[float, float] | None:
    """(row, column) spacing in mm when `spacing_mm` is two positive finite numbers; otherwise None, with a
    logged note (the volume is then written without physical units)."""
    if spacing_mm is None:
        return None
    try:
        values = tuple(float(v) for v in spacing_mm)
    except (TypeError, ValueError):
        values = ()
    if len(values) == 2 and all(math.isfinite(v) and v > 0 for v in values):
        return values
    log.warning("%s: the pixel spacing %r is not two positive numbers of mm; it is ignored and the volume is "
                "written without physical units", path, spacing_mm)
    return None


class NiftiWriter:
    """Streams a uint8 (H, W, T) NIfTI-1 volume: header, then each frame in the file's Fortran order (the
    first axis varies fastest), so no more than one frame is in memory. Verified by re-reading the header
    with nibabel and streaming the data back. Values: the lesion ids ("labels"), or 1 for every lesion
    ("union")."""

    def __init__(self, root: Path, video_id: str, frame_size: tuple[int, int], num_frames: int,
                 spacing_mm: tuple[float, float] | None = None, mode: str = "labels"):
        self.mode = mode
        import nibabel as nib

        self.path = root / f"{video_id}.nii.gz"
        root.mkdir(parents=True, exist_ok=True)
        self.outputs = [self.path]
        self.needs_frames = False
        self.shape = (frame_size[0], frame_size[1], num_frames)
        header = nib.Nifti1Header()
        header.set_data_shape(self.shape)
        header.set_data_dtype(np.uint8)
        spacing_mm = valid_spacing(spacing_mm, self.path)
        self.spacing_mm = list(spacing_mm) if spacing_mm else None
        zooms = (*(spacing_mm or (1.0, 1.0)), 1.0)  # (row, column) pixel spacing in mm when known; frames: 1
        affine = np.diag([*zooms, 1.0])
        header.set_qform(affine, code=0)  # no patient coordinate system: a video is not a scanner volume
        header.set_sform(affine, code=0)
        header.set_zooms(zooms)
        header.set_xyzt_units("mm" if spacing_mm else "unknown", "unknown")
        self.vox_offset = 352
        header["vox_offset"] = self.vox_offset
        self._file = gzip.open(self.path, "wb", compresslevel=6)
        header.write_to(self._file)
        self._written = 0

    def _values(self, labels: np.ndarray) -> np.ndarray:
        return labels if self.mode == "labels" else (labels > 0).view(np.uint8)

    def add(self, index: int, frame: np.ndarray | None, labels: np.ndarray, original: Path | None = None) -> str:
        self._file.write(np.ascontiguousarray(self._values(labels).T).tobytes())
        self._written += 1
        return str(self._written - 1)  # position along the volume's third axis

    def close(self) -> None:
        self._file.close()

    def verify(self, masks) -> None:
        """`masks`: iterable of the label maps uint8 (H, W) in volume order (re-derived by the caller)."""
        import nibabel as nib

        try:
            image = nib.load(self.path)
        except Exception as exc:  # nibabel raises several types on a bad header
            raise ExportError(f"{self.path}: the NIfTI file cannot be read back ({exc})") from None
        if image.shape != self.shape or image.get_data_dtype() != np.uint8:
            raise ExportError(f"{self.path}: read back as {image.shape} {image.get_data_dtype()}, expected "
                              f"{self.shape} uint8")
        h, w = self.shape[:2]
        with gzip.open(self.path, "rb") as f:
            f.read(self.vox_offset)
            for t, mask in enumerate(masks):
                data = f.read(h * w)
                back = np.frombuffer(data, np.uint8).reshape(w, h).T if len(data) == h * w else None
                if back is None or not np.array_equal(back, self._values(mask)):
                    raise ExportError(f"{self.path}: frame {t} of the volume reads back differently from what "
                                      f"was written")
