"""DICOM multi-frame cine loops (ultrasound, endoscopy), grayscale or colour, decoded one frame at a time.

Native (uncompressed) transfer syntaxes always work; compressed ones (JPEG baseline, JPEG 2000, RLE...) work
when pydicom has a decoder for them installed, otherwise opening fails with the missing packages named.
Only technical header fields are kept in `metadata`: no patient, study or institution fields. `calibrations`
lists what the file says a pixel measures (Pixel Spacing, the Sequence of Ultrasound Regions (0018,6011)).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from ..calibration import UNITS_CM, Calibration, calibrations_from_dicom
from ..exceptions import SourceError
from ..frame_cache import DEFAULT_CACHE_BYTES
from .base import VideoSource, hash_file, sample_file
from .limits import check_frame_pixels

log = logging.getLogger(__name__)

SUPPORTED_PHOTOMETRIC = ("MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422")


def _calibrations(ds) -> tuple[list[Calibration], list[float] | None, list[str]]:
    """What the file says a pixel measures (technical fields only: Pixel Spacing and the Sequence of Ultrasound
    Regions, see `calibration.calibrations_from_dicom`), the one (row, column) spacing in mm a whole volume can
    take (Pixel Spacing, else the ultrasound regions' when they all agree; None otherwise), and notes on values
    that are stated but unusable."""
    calibrations = calibrations_from_dicom(ds)
    notes = []
    whole = [c for c in calibrations if c.region is None]
    regional = {c.spacing for c in calibrations if c.region is not None}
    if "PixelSpacing" in ds and not whole:
        try:
            stated = [str(v) for v in ds.PixelSpacing]
        except (TypeError, ValueError):
            stated = ["(unreadable)"]
        notes.append(f"PixelSpacing {stated} is not a pixel spacing (two plausible positive numbers of mm); it is "
                     f"ignored: no physical size is shown or written from it")
    stated_regions = sum(1 for item in getattr(ds, "SequenceOfUltrasoundRegions", None) or [] if _in_cm(item))
    if stated_regions > len(calibrations) - len(whole):
        notes.append(f"{stated_regions - (len(calibrations) - len(whole))} of the file's ultrasound regions in cm "
                     f"give no plausible pixel size (Physical Delta X/Y); they are ignored: lesions inside them are "
                     f"measured in pixels unless another calibration applies")
    volume = list(whole[0].spacing) if whole else list(next(iter(regional))) if len(regional) == 1 else None
    return calibrations, volume, notes


def _in_cm(region) -> bool:
    try:
        return int(region.PhysicalUnitsXDirection) == UNITS_CM and int(region.PhysicalUnitsYDirection) == UNITS_CM
    except (AttributeError, TypeError, ValueError):
        return False


def _fps(ds) -> float | None:
    for keyword, to_fps in (("FrameTime", lambda v: 1000.0 / v), ("CineRate", float),
                            ("RecommendedDisplayFrameRate", float)):
        try:
            value = float(getattr(ds, keyword))
            if value > 0:
                return to_fps(value)
        except (AttributeError, TypeError, ValueError, ZeroDivisionError):
            continue
    return None


class DicomCineSource(VideoSource):
    kind = "dicom"

    def __init__(self, path: Path | str, cache_bytes: int = DEFAULT_CACHE_BYTES):
        import pydicom
        from pydicom.errors import InvalidDicomError

        path = Path(path)
        if not path.is_file():
            raise SourceError(f"{path}: DICOM file not found")
        try:
            ds = pydicom.dcmread(path, defer_size="1 KB")
        except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
            raise SourceError(f"{path}: not a readable DICOM file ({exc})") from None
        if "PixelData" not in ds:
            raise SourceError(f"{path}: this DICOM file has no pixel data (a report or structured document?); "
                              f"open the cine loop's image file instead")
        try:
            rows, columns = int(ds.Rows), int(ds.Columns)
            frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
            photometric = str(ds.PhotometricInterpretation).upper()
        except (AttributeError, TypeError, ValueError) as exc:
            raise SourceError(f"{path}: DICOM image attributes missing or invalid ({exc})") from None
        if photometric not in SUPPORTED_PHOTOMETRIC:
            raise SourceError(f"{path}: photometric interpretation {photometric} is not supported (supported: "
                              f"{', '.join(SUPPORTED_PHOTOMETRIC)}); convert the file to RGB or grayscale")
        syntax = ds.file_meta.get("TransferSyntaxUID", pydicom.uid.ImplicitVRLittleEndian)
        self._check_decoder(path, syntax)
        if frames < 1:
            raise SourceError(f"{path}: NumberOfFrames is {frames}; the file is damaged")
        check_frame_pixels(path, rows, columns)
        notes = []
        if not syntax.is_compressed:
            frames = self._frames_in_pixel_data(path, ds, rows, columns, frames, notes)
        super().__init__(path, frames, (rows, columns), _fps(ds), cache_bytes)
        self.announced_frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
        self.photometric = photometric
        self._bits_stored = int(getattr(ds, "BitsStored", getattr(ds, "BitsAllocated", 8)))
        self._signed = int(getattr(ds, "PixelRepresentation", 0)) == 1
        self.metadata = {"modality": str(getattr(ds, "Modality", "")), "transfer_syntax": str(syntax.name),
                         "photometric": photometric, "bits_stored": self._bits_stored}
        self.calibrations, spacing, spacing_notes = _calibrations(ds)
        if spacing is not None:
            self.metadata["pixel_spacing_mm"] = spacing
        if self.calibrations:
            self.metadata["calibrations"] = [c.to_json() for c in self.calibrations]
        for note in [*notes, *(f"{path}: {note}" for note in spacing_notes)]:
            log.warning(note)
            self.warnings.append(note)
        self._file = open(path, "rb")
        try:
            first = self._decode(0)  # fail now, with the file named, rather than on the first view
        except SourceError:
            self._file.close()
            raise
        self.cache.put(0, self._checked(first, 0))

    @staticmethod
    def _frames_in_pixel_data(path: Path, ds, rows: int, columns: int, frames: int, notes: list[str]) -> int:
        """The frames an uncompressed file's pixel data really holds, checked against its header: fewer whole
        frames than announced are repaired to what is there (noted); none at all is a SourceError."""
        try:
            length = ds.get_item(0x7FE00010, keep_deferred=True).length
            samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
            bits = int(getattr(ds, "BitsAllocated", 8) or 8)
        except (AttributeError, KeyError, TypeError, ValueError):
            return frames  # the decoder says what is wrong, naming the frame
        if bits % 8 or not 0 < length < 0xFFFFFFFF:
            return frames
        frame_bytes = rows * columns * samples * bits // 8
        whole = length // frame_bytes
        if whole < 1:
            raise SourceError(f"{path}: the pixel data holds {length:,} bytes, less than one frame of {columns}x{rows} "
                              f"({samples} sample(s) of {bits} bits: {frame_bytes:,} bytes); the file is truncated or "
                              f"its header (Rows, Columns, BitsAllocated) is wrong")
        if whole < frames:
            notes.append(f"{path}: the header announces {frames} frames of {columns}x{rows} but the pixel data holds "
                         f"{whole} ({length:,} bytes; the file is truncated or its header is wrong); it is opened "
                         f"with those {whole} frames")
            return whole
        if length > frames * frame_bytes + 1:  # DICOM pads odd lengths with one byte
            notes.append(f"{path}: the pixel data holds {length:,} bytes, more than the {frames * frame_bytes:,} of "
                         f"the {frames} frames of {columns}x{rows} its header announces; only those frames are shown "
                         f"(if they look garbled, the header's Rows, Columns or NumberOfFrames are wrong)")
        return frames

    @staticmethod
    def _check_decoder(path: Path, syntax) -> None:
        from pydicom.pixels import get_decoder

        if not syntax.is_compressed:
            return
        try:
            decoder = get_decoder(syntax)
        except NotImplementedError:
            decoder = None
        if decoder is None or not decoder.is_available:
            needs = "; ".join(decoder.missing_dependencies) if decoder is not None else "no decoder exists"
            raise SourceError(f"{path}: pixel data compressed as {syntax.name} ({syntax}), which this installation "
                              f"cannot decode ({needs}). Install a decoder (e.g. `pip install pylibjpeg "
                              f"pylibjpeg-libjpeg pylibjpeg-openjpeg`) or convert the file to uncompressed, e.g. "
                              f"`gdcmconv --raw {path.name} out.dcm`")

    def _decode(self, index: int) -> np.ndarray:
        from pydicom.pixels import pixel_array

        try:
            self._file.seek(0)
            array = pixel_array(self._file, index=index if self.announced_frames > 1 else None)
        except Exception as exc:  # decoders raise anything from ValueError to RuntimeError on bad data
            raise SourceError(f"{self.path}: frame {index + 1} of {self.num_frames} cannot be decoded "
                              f"({type(exc).__name__}: {exc}); the file may be damaged or use an unusual "
                              f"encoding; convert it with `gdcmconv --raw`") from None
        return self._to_rgb8(array)

    def _to_rgb8(self, array: np.ndarray) -> np.ndarray:
        """(H, W) or (H, W, 3) of any integer type -> uint8 (H, W, 3) RGB."""
        if array.dtype != np.uint8:  # scale the stored bit range onto 0..255
            low = -(1 << (self._bits_stored - 1)) if self._signed else 0
            span = float((1 << self._bits_stored) - 1)
            array = np.clip((array.astype(np.float32) - low) * (255.0 / span) + 0.5, 0, 255).astype(np.uint8)
        if array.ndim == 2:
            if self.photometric == "MONOCHROME1":  # 0 is white in MONOCHROME1
                array = 255 - array
            array = np.repeat(array[:, :, None], 3, axis=2)
        return np.ascontiguousarray(array)

    def _legacy_frame_count(self) -> int:
        return self.announced_frames  # identity version 1 took the header's word

    def _identity_parts(self, digest: "hashlib._Hash") -> None:
        hash_file(self.path, digest)

    def _legacy_identity_parts(self, digest: "hashlib._Hash") -> None:
        sample_file(self.path, digest)

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()
        super().close()
