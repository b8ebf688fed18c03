"""Helpers of the clinical-output tests: an ultrasound DICOM cine as scanners write them (UIDs, patient and
study fields, a Sequence of Ultrasound Regions, with or without a Frame of Reference), analytic lesion shapes,
and lesion label maps written into a document."""

from __future__ import annotations

from pathlib import Path

import numpy as np

PATIENT = {"PatientName": "Doe^Jane", "PatientID": "PAT-123456", "PatientBirthDate": "19700101",
           "PatientSex": "F", "AccessionNumber": "ACC-98765", "StudyID": "ST-42", "StudyDate": "20260102",
           "StudyTime": "101500", "ReferringPhysicianName": "House^Gregory", "InstitutionName": "Secret Hospital"}


def ultrasound_region(x0: int, y0: int, x1: int, y1: int, delta_cm: float, units: int = 3):
    """An item of the Sequence of Ultrasound Regions (0018,6011): inclusive bounds, square pixels of delta cm."""
    from pydicom.dataset import Dataset

    item = Dataset()
    item.RegionSpatialFormat, item.RegionDataType, item.RegionFlags = 1, 1, 0
    item.RegionLocationMinX0, item.RegionLocationMinY0 = x0, y0
    item.RegionLocationMaxX1, item.RegionLocationMaxY1 = x1, y1
    item.PhysicalUnitsXDirection = item.PhysicalUnitsYDirection = units
    item.PhysicalDeltaX = item.PhysicalDeltaY = delta_cm
    return item


def write_us_cine(path: Path, frames: np.ndarray, regions=(), pixel_spacing=None, frame_of_reference: bool = False,
                  study_uid: str | None = None) -> Path:
    """A grayscale multi-frame ultrasound cine (Ultrasound Multi-frame Image Storage) of uint8 (T, H, W) frames,
    with scanner-like UIDs and identifying patient and study fields."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.3.1")
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = generate_uid(), 3, 1
    for keyword, value in PATIENT.items():
        setattr(ds, keyword, value)
    if frame_of_reference:
        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = generate_uid(), ""
    ds.Modality, ds.Manufacturer, ds.PatientOrientation, ds.Laterality = "US", "Test Scanner", None, None
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.NumberOfFrames = len(frames)
    ds.Rows, ds.Columns = frames.shape[1:3]
    ds.FrameTime, ds.FrameIncrementPointer = 40.0, 0x00181063
    if regions:
        ds.SequenceOfUltrasoundRegions = list(regions)
    if pixel_spacing is not None:
        ds.PixelSpacing = list(pixel_spacing)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = np.ascontiguousarray(frames, dtype=np.uint8).tobytes()
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


def _rotated_coordinates(shape, centre, angle):
    """Each pixel centre's coordinates in the frame of a shape centred at `centre` ((x, y), floats) and turned
    by `angle` degrees (image axes: x right, y down)."""
    y, x = np.mgrid[0:shape[0], 0:shape[1]].astype(float)
    theta = np.deg2rad(angle)
    dx, dy = x - centre[0], y - centre[1]
    return dx * np.cos(theta) + dy * np.sin(theta), -dx * np.sin(theta) + dy * np.cos(theta)


def ellipse(shape, centre, semi_axes, angle) -> np.ndarray:
    """bool mask of the pixels whose centre lies in the ellipse: its diameters are 2a and 2b, its area pi a b."""
    u, v = _rotated_coordinates(shape, centre, angle)
    return (u / semi_axes[0]) ** 2 + (v / semi_axes[1]) ** 2 <= 1.0


def rotated_rectangle(shape, centre, size, angle) -> np.ndarray:
    """bool mask of the pixels whose centre lies in the w x h rectangle: diagonal hypot(w, h), area w h, and the
    longest chord perpendicular to the diagonal h * diagonal / w (it joins the long sides)."""
    u, v = _rotated_coordinates(shape, centre, angle)
    return (np.abs(u) <= size[0] / 2) & (np.abs(v) <= size[1] / 2)


def within(measured: float, true: float, pixel: float = 1.0) -> bool:
    """Within 2 % or one pixel (in the measured unit) of the true value."""
    return abs(measured - true) <= max(0.02 * true, pixel)


def with_labels(document, label_maps: dict[int, np.ndarray]):
    """Write uint8 (H, W) lesion label maps (frame index -> labels) into the frames of `document` a human
    reviewed, each keeping its status (accepted, else edited); other frames stay as they are. Returns the
    document."""
    from vivim_studio.document import FrameStatus

    for index, labels in label_maps.items():
        if not document.status(index).human_reviewed:
            continue
        status = FrameStatus.ACCEPTED if document.status(index) == FrameStatus.ACCEPTED else FrameStatus.EDITED
        document.set_labels(index, np.asarray(labels, np.uint8), "paint lesions", status=status)
    return document
