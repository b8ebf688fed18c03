"""DICOM Segmentation (SEG) export of a DICOM cine's lesion masks, for PACS and DICOM viewers.

    <root>/<video_id>.seg.dcm     Segmentation Storage (1.2.840.10008.5.1.4.1.1.66.4), BINARY

One segment per lesion ("Lesion k", SNOMED CT 49755003 morphologically abnormal structure / 52988006 lesion),
with a Tracking ID ("Lesion k") and a Tracking UID derived from the video's identity and the lesion number, so a
lesion keeps its UID over every frame and every export of the video. Each SEG frame is one lesion on one source
frame: it references the source's SOP Instance UID and that frame's number (Derivation Image Sequence, purpose
121322 "Source image for image processing operation", derivation 113076 "Segmentation") and matches the source
frame pixel for pixel. Frames where a lesion is absent are omitted, as usual for SEG; the export manifest lists
the frames that were exported.

Why not highdicom's `Segmentation` constructor: it refuses a multi-frame source without patient geometry (no
Frame of Reference UID, or one without Image Position (Patient)), which is what ultrasound cines are. The
standard allows it (PS3.3 A.51.5.1): without a Frame of Reference, "each pixel of the segmentation shall
correspond to a pixel in a referenced image, using the Derivation Image Functional Group", and the Frame of
Reference module is then optional (Table A.51-1). So the dataset is assembled here, module by module, with
highdicom's segment descriptions and UIDs, and indexed by two dimensions (Multi-frame Dimension module):
Referenced Segment Number (in the Segment Identification Sequence) and Temporal Position Index (in the Frame
Content Sequence; the source frame's number, its place in the cine's time). A source with a Frame of Reference
UID passes it on (permitted: "may be present otherwise"); no Pixel Measures or Plane Position is invented.
Every written file is read back with pydicom and highdicom and compared with the masks, frame by frame.

Privacy: this is the one output that carries the source's patient and study identifiers (Patient's Name, ID,
Birth Date, Sex; Study Instance UID, Date, Time, ID, Accession Number, Referring Physician), copied from the
source file into the SEG only, because a viewer links a SEG to its images through them. They are read from the
file here, for this file, and nowhere else: never into the document, the workspace or the manifest.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from .exceptions import ExportError
from .lesion_view import lesion_from_model, lesion_masks

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
SEG_SUFFIX = ".seg.dcm"
PATIENT_LINK = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex")
STUDY_LINK = ("StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName")
TYPE2_LINK = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID",
              "AccessionNumber", "ReferringPhysicianName")  # present in every SEG, empty when the source has none
LOSSY_SYNTAXES = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81",
                  "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.203"}
PRIVACY_NOTE = ("the DICOM-SEG file carries the source's patient and study identifiers (copied from it so that "
                "viewers link the segmentation to its images): handle it as patient data")
FORMATS_THAT_WORK = "vtus, png or nifti"


class SourceHeader:
    """What the SEG needs of the source DICOM file, read from its header (pixel data not read)."""

    def __init__(self, path: Path, frame_size: tuple[int, int]):
        import pydicom
        from pydicom.errors import InvalidDicomError

        try:
            header = pydicom.dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
            raise ExportError(f"{path}: the source DICOM file cannot be read for the DICOM-SEG export ({exc})") \
                from None
        missing = [k for k in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
                   if not str(header.get(k, "") or "")]
        if missing:
            raise ExportError(f"{path}: the source has no {', '.join(missing)}; a DICOM-SEG must reference its source "
                              f"by them. Export as {FORMATS_THAT_WORK} instead")
        if (int(header.get("Rows", 0) or 0), int(header.get("Columns", 0) or 0)) != tuple(frame_size):
            raise ExportError(f"{path}: the source's Rows x Columns differ from the video's frames; the file changed "
                              f"since it was opened")
        self.sop_class_uid, self.sop_instance_uid = str(header.SOPClassUID), str(header.SOPInstanceUID)
        self.series_instance_uid = str(header.SeriesInstanceUID)
        self.frame_of_reference_uid = str(header.get("FrameOfReferenceUID", "") or "") or None
        self.position_reference = header.get("PositionReferenceIndicator")
        self.patient_orientation = header.get("PatientOrientation")
        self.number_of_frames = int(header.get("NumberOfFrames", 1) or 1)
        syntax = str(header.file_meta.get("TransferSyntaxUID", ""))
        self.lossy = str(header.get("LossyImageCompression", "00")) == "01" or syntax in LOSSY_SYNTAXES
        self.link = {k: header.get(k) for k in (*PATIENT_LINK, *STUDY_LINK) if k in header}


def tracking_uid(identity: str, lesion: int) -> str:
    """The lesion's Tracking UID: the same for one lesion of one video in every export. A UID under 2.25 (PS3.5
    B.2) from a name-based UUID (RFC 4122, version 5) of the video's identity and the lesion's number."""
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "vivim-studio/lesion")
    return f"2.25.{uuid.uuid5(namespace, f'{identity}:{lesion}').int}"


def _code(value: str, scheme: str, meaning: str):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def segment_descriptions(lesions: list[int], identity: str, automatic: dict[int, bool]) -> list:
    """highdicom SegmentDescriptions: `automatic[k]` True when some exported mask of lesion k came from the
    model (SEMIAUTOMATIC: proposed, then reviewed), else MANUAL."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from .. import __version__

    algorithm = hd.AlgorithmIdentificationSequence(name="Vivim", version=__version__,
                                                   family=codes.cid7162.ArtificialIntelligence)
    return [hd.seg.SegmentDescription(
        segment_number=k, segment_label=f"Lesion {k}",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Lesion,
        algorithm_type="SEMIAUTOMATIC" if automatic.get(k) else "MANUAL",
        algorithm_identification=algorithm if automatic.get(k) else None,
        tracking_id=f"Lesion {k}", tracking_uid=tracking_uid(identity, k)) for k in lesions]


class PackedMasks:
    """The exported frames' lesion masks, kept at one bit per pixel (a long cine's masks fit in memory)."""

    def __init__(self, frame_size: tuple[int, int]):
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.frames: list[int] = []  # 0-based source frames, in export order
        self.overlap = False  # some pixel belongs to two lesions
        self._bits: dict[tuple[int, int], np.ndarray] = {}

    def add(self, frame: int, masks: dict[int, np.ndarray]) -> None:
        """The lesions of `frame` ({lesion: bool (H, W)}); empty masks are not kept."""
        self.frames.append(frame)
        if len(masks) > 1:
            self.overlap |= bool((sum(m.astype(np.uint8) for m in masks.values()) > 1).any())
        for lesion, mask in masks.items():
            if mask.any():
                self._bits[(frame, lesion)] = np.packbits(np.asarray(mask, bool).ravel(), bitorder="little")

    def lesions(self) -> list[int]:
        return sorted({lesion for _, lesion in self._bits})

    def planes(self) -> list[tuple[int, int]]:
        """(lesion, frame) of every SEG frame: lesion by lesion, in frame order."""
        return sorted((k, t) for t, k in self._bits)

    def mask(self, frame: int, lesion: int) -> np.ndarray:
        """bool (H, W); all False where the lesion is absent."""
        bits = self._bits.get((frame, lesion))
        size = self.frame_size[0] * self.frame_size[1]
        if bits is None:
            return np.zeros(self.frame_size, bool)
        return np.unpackbits(bits, count=size, bitorder="little").astype(bool).reshape(self.frame_size)

    def pixel_data(self) -> bytes:
        """The SEG's Pixel Data: the planes' bits concatenated, little-endian bit order, frames not padded (PS3.5
        8.1.1 for Bits Allocated 1), the whole padded to an even length."""
        planes = self.planes()
        if (self.frame_size[0] * self.frame_size[1]) % 8 == 0:  # each frame is a whole number of bytes
            data = b"".join(self._bits[(t, k)].tobytes() for k, t in planes)
        else:  # eight frames always are
            data = b"".join(
                np.packbits(np.concatenate([self.mask(t, k).ravel() for k, t in planes[i:i + 8]]),
                            bitorder="little").tobytes() for i in range(0, len(planes), 8))
        return data + b"\0" if len(data) % 2 else data


def segmentation_dataset(source: SourceHeader, masks: PackedMasks, identity: str, automatic: dict[int, bool]):
    """The SEG dataset of `masks`: one SEG frame per lesion and source frame where the lesion is present, lesion
    by lesion in frame order."""
    import highdicom as hd
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

    from .. import __version__

    lesions, planes = masks.lesions(), masks.planes()
    if not planes:
        raise ExportError("no lesion is painted on the exported frames: a DICOM-SEG holds lesions only")
    now = _dt.datetime.now()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SEG_SOP_CLASS
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: names copied from the source keep their characters
    ds.SOPClassUID, ds.SOPInstanceUID = SEG_SOP_CLASS, str(hd.UID())
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceCreationDate, ds.InstanceCreationTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    # Patient and General Study: the source's identifiers, so that a viewer files the SEG with its images
    for keyword in TYPE2_LINK:
        setattr(ds, keyword, None)
    for keyword, value in source.link.items():
        setattr(ds, keyword, value)
    # General Series, Segmentation Series, (Frame of Reference), General and Enhanced General Equipment
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "SEG", str(hd.UID()), 7001
    ds.SeriesDescription = "Lesion masks (Vivim Studio)"
    ds.SeriesDate, ds.SeriesTime = ds.InstanceCreationDate, ds.InstanceCreationTime
    if source.frame_of_reference_uid is not None:
        ds.FrameOfReferenceUID = source.frame_of_reference_uid
        ds.PositionReferenceIndicator = source.position_reference
    ds.Manufacturer, ds.ManufacturerModelName = "Vivim Studio", "Vivim Studio"
    ds.DeviceSerialNumber, ds.SoftwareVersions = "none (software)", __version__
    # Segmentation Image, Image Pixel
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.PatientOrientation = source.patient_orientation  # type 2C (General Image): no patient geometry here
    ds.InstanceNumber = 1
    ds.ContentLabel, ds.ContentDescription, ds.ContentCreatorName = "LESIONS", "Lesion masks reviewed", None
    ds.ContentDate, ds.ContentTime = ds.InstanceCreationDate, ds.InstanceCreationTime
    ds.SegmentationType = "BINARY"
    ds.SegmentSequence = Sequence(segment_descriptions(lesions, identity, automatic))
    ds.SegmentsOverlap = "YES" if masks.overlap else "NO"
    ds.Rows, ds.Columns = masks.frame_size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 1
    ds.HighBit, ds.PixelRepresentation = 0, 0
    ds.LossyImageCompression = "01" if source.lossy else "00"
    # Multi-frame Dimension: segment, then the source frame's temporal position
    organization = str(hd.UID())
    ds.DimensionOrganizationSequence = [Dataset()]
    ds.DimensionOrganizationSequence[0].DimensionOrganizationUID = organization
    dimensions = []
    for pointer, group, label in ((0x0062000B, 0x0062000A, "Segment Number"),
                                  (0x00209128, 0x00209111, "Temporal Position Index")):
        item = Dataset()
        item.DimensionOrganizationUID, item.DimensionIndexPointer = organization, pointer
        item.FunctionalGroupPointer, item.DimensionDescriptionLabel = group, label
        dimensions.append(item)
    ds.DimensionIndexSequence = dimensions
    # Multi-frame Functional Groups: per frame, the source frame it matches pixel for pixel
    ds.SharedFunctionalGroupsSequence = [Dataset()]
    ds.PerFrameFunctionalGroupsSequence = [_frame_item(source, k, t) for k, t in planes]
    ds.NumberOfFrames = len(planes)
    # Common Instance Reference
    instance = Dataset()
    instance.ReferencedSOPClassUID, instance.ReferencedSOPInstanceUID = source.sop_class_uid, source.sop_instance_uid
    series = Dataset()
    series.SeriesInstanceUID, series.ReferencedInstanceSequence = source.series_instance_uid, [instance]
    ds.ReferencedSeriesSequence = [series]
    ds.PixelData = masks.pixel_data()
    ds["PixelData"].VR = "OB"
    return ds


def _frame_item(source: SourceHeader, lesion: int, frame: int):
    from pydicom.dataset import Dataset

    referenced = Dataset()
    referenced.ReferencedSOPClassUID, referenced.ReferencedSOPInstanceUID = (source.sop_class_uid,
                                                                            source.sop_instance_uid)
    referenced.ReferencedFrameNumber = frame + 1
    referenced.PurposeOfReferenceCodeSequence = [_code("121322", "DCM", "Source image for image processing "
                                                                         "operation")]
    referenced.SpatialLocationsPreserved = "YES"
    derivation = Dataset()
    derivation.DerivationCodeSequence = [_code("113076", "DCM", "Segmentation")]
    derivation.SourceImageSequence = [referenced]
    content = Dataset()
    content.DimensionIndexValues = [lesion, frame + 1]
    content.TemporalPositionIndex = frame + 1
    segment = Dataset()
    segment.ReferencedSegmentNumber = lesion
    item = Dataset()
    item.DerivationImageSequence = [derivation]
    item.FrameContentSequence = [content]
    item.SegmentIdentificationSequence = [segment]
    return item


def check_read_back(path: Path, source_uid: str, masks: PackedMasks, chunk: int = 32) -> None:
    """Read the SEG at `path` back with pydicom (each frame's references and pixels) and with highdicom (the
    masks of each exported source frame, an omitted frame read as empty) and compare both with `masks`, a few
    frames at a time. ExportError when the file does not read back or differs."""
    import highdicom as hd
    import pydicom
    from pydicom.pixels import iter_pixels

    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
        for item, stored in zip(dataset.PerFrameFunctionalGroupsSequence, iter_pixels(path)):
            lesion = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
            reference = item.DerivationImageSequence[0].SourceImageSequence[0]
            frame = int(reference.ReferencedFrameNumber) - 1
            if reference.ReferencedSOPInstanceUID != source_uid or not np.array_equal(stored > 0,
                                                                                    masks.mask(frame, lesion)):
                raise ExportError(f"{path}: SEG frame of lesion {lesion} on frame {frame + 1} differs from its mask")
        seg = hd.seg.segread(path)
        numbers = [int(n) for n in seg.segment_numbers]
        for start in range(0, len(masks.frames), chunk):
            frames = masks.frames[start:start + chunk]
            pixels = seg.get_pixels_by_source_frame(source_uid, [t + 1 for t in frames], segment_numbers=numbers,
                                                    assert_missing_frames_are_empty=True, dtype=bool)
            for i, t in enumerate(frames):
                for j, k in enumerate(numbers):
                    if not np.array_equal(pixels[i, :, :, j], masks.mask(t, k)):
                        raise ExportError(f"{path}: lesion {k} on frame {t + 1} reads back differently")
    except ExportError as exc:
        raise ExportError(f"{exc}; nothing was exported") from None
    except Exception as exc:  # pydicom and highdicom raise anything from ValueError to KeyError on a bad file
        raise ExportError(f"{path}: the DICOM-SEG written does not read back ({type(exc).__name__}: {exc}); "
                          f"nothing was exported") from None


def require_dicom_source(document) -> None:
    """ExportError naming the formats that work, unless the document's video is a DICOM file at hand."""
    from .sources import DicomCineSource

    if isinstance(document.source, DicomCineSource):
        return
    kind = document.source.kind
    what = {"dicom": "a DICOM file that is not at hand", "frames": "a folder of frames"}.get(kind, "a video file")
    raise ExportError(f"{document.source.path}: a DICOM-SEG references its source DICOM file's frames, and this "
                      f"video is {what}; export it as {FORMATS_THAT_WORK}"
                      + (", or give the DICOM file's location (--source PATH)" if kind == "dicom" else ""))


class DicomSegWriter:
    """The export writer of `--format dicom-seg` (see `export_writers` for the protocol): collects each exported
    frame's lesions, then `finish()` writes `<video_id>.seg.dcm` and checks it read back."""

    needs_frames = False

    def __init__(self, root: Path, video_id: str, document):
        require_dicom_source(document)
        self.document = document
        self.source = SourceHeader(document.source.path, document.frame_size)
        self.path = root / f"{video_id}{SEG_SUFFIX}"
        self.outputs = [self.path]
        self.masks = PackedMasks(document.frame_size)
        self.automatic: dict[int, bool] = {}
        self.info: dict[str, Any] = {}

    def add(self, index: int, frame, mask, original=None) -> str:
        lesions = lesion_masks(self.document, index)
        self.masks.add(index, lesions)
        for lesion in lesions:
            from_model = lesion_from_model(self.document, index, lesion)
            self.automatic[lesion] = self.automatic.get(lesion, False) or from_model
        return f"{index + 1:04d}"

    def close(self) -> None:
        pass

    def finish(self) -> None:
        """Write the SEG and verify it: every exported frame's lesions, read back, equal the document's."""
        identity = (self.document.workspace.identity if self.document.workspace is not None
                    else self.document.source.identity).digest
        dataset = segmentation_dataset(self.source, self.masks, identity, self.automatic)
        dataset.save_as(self.path, enforce_file_format=True)
        check_read_back(self.path, self.source.sop_instance_uid, self.masks)
        self.info = {"sop_instance_uid": str(dataset.SOPInstanceUID),
                     "series_instance_uid": str(dataset.SeriesInstanceUID),
                     "frame_of_reference": self.source.frame_of_reference_uid is not None,
                     "segments": [{"segment_number": int(s.SegmentNumber), "label": str(s.SegmentLabel),
                                   "tracking_uid": str(s.TrackingUID), "algorithm_type": str(s.SegmentAlgorithmType)}
                                  for s in dataset.SegmentSequence],
                     "seg_frames": int(dataset.NumberOfFrames), "carries_patient_and_study_identifiers": True}
