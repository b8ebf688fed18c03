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
from .lesion_view import lesion_masks
from .status import HUMAN

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


def _pack_planes(planes: list[np.ndarray]) -> bytes:
    """Concatenated 1-bit pixels of `planes` (bool (H, W) each), little-endian bit order, frames not padded
    (PS3.5 8.1.1 for Bits Allocated 1); the whole padded to an even length."""
    if not planes:
        return b""
    size = planes[0].size
    group = 1 if size % 8 == 0 else 8  # 8 frames hold a whole number of bytes whatever their size
    chunks = [np.packbits(np.concatenate([p.ravel() for p in planes[i:i + group]]), bitorder="little").tobytes()
              for i in range(0, len(planes), group)]
    data = b"".join(chunks)
    return data + b"\0" if len(data) % 2 else data


def segmentation_dataset(source: SourceHeader, frames: dict[int, dict[int, np.ndarray]], identity: str,
                         automatic: dict[int, bool], frame_size: tuple[int, int]):
    """The SEG dataset (pydicom FileDataset-ready) of `frames` ({0-based source frame: {lesion: bool (H, W)}}):
    one SEG frame per lesion and source frame where the lesion is present, segment by segment in frame order."""
    import highdicom as hd
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

    from .. import __version__

    lesions = sorted({k for masks in frames.values() for k in masks})
    planes = [(k, t, frames[t][k]) for k in lesions for t in sorted(frames) if k in frames[t] and frames[t][k].any()]
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
    overlap = any(sum(m.astype(np.uint8) for m in masks.values()).max() > 1 for masks in frames.values() if masks)
    ds.SegmentsOverlap = "YES" if overlap else "NO"
    ds.Rows, ds.Columns = frame_size
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
    ds.PerFrameFunctionalGroupsSequence = [_frame_item(source, k, t) for k, t, _ in planes]
    ds.NumberOfFrames = len(planes)
    # Common Instance Reference
    instance = Dataset()
    instance.ReferencedSOPClassUID, instance.ReferencedSOPInstanceUID = source.sop_class_uid, source.sop_instance_uid
    series = Dataset()
    series.SeriesInstanceUID, series.ReferencedInstanceSequence = source.series_instance_uid, [instance]
    ds.ReferencedSeriesSequence = [series]
    ds.PixelData = _pack_planes([m for _, _, m in planes])
    ds["PixelData"].VR = "OB"
    return ds, [(k, t) for k, t, _ in planes]


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


def read_back(path: Path, source_uid: str, frames: list[int]) -> dict[int, dict[int, np.ndarray]]:
    """{0-based source frame: {lesion: bool (H, W)}} of a SEG as highdicom reads it (an omitted frame is empty),
    after pydicom's own decoding agreed with it. ExportError when the file does not read back."""
    import highdicom as hd
    import pydicom

    try:
        dataset = pydicom.dcmread(path)
        stored = dataset.pixel_array.reshape(int(dataset.NumberOfFrames), dataset.Rows, dataset.Columns)
        seg = hd.seg.Segmentation.from_dataset(dataset, copy=False)
        numbers = [int(n) for n in seg.segment_numbers]
        pixels = seg.get_pixels_by_source_frame(source_uid, [t + 1 for t in frames], segment_numbers=numbers,
                                                assert_missing_frames_are_empty=True, dtype=bool)
    except Exception as exc:  # pydicom and highdicom raise anything from ValueError to KeyError on a bad file
        raise ExportError(f"{path}: the DICOM-SEG written does not read back ({type(exc).__name__}: {exc}); "
                          f"nothing was exported") from None
    for index, item in enumerate(dataset.PerFrameFunctionalGroupsSequence):  # pydicom's view, frame by frame
        lesion = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        frame = int(item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedFrameNumber) - 1
        position = frames.index(frame)
        if not np.array_equal(stored[index] > 0, pixels[position, :, :, numbers.index(lesion)]):
            raise ExportError(f"{path}: pydicom and highdicom read SEG frame {index + 1} differently; nothing was "
                              f"exported")
    return {t: {k: pixels[i, :, :, j] for j, k in enumerate(numbers) if pixels[i, :, :, j].any()}
            for i, t in enumerate(frames)}


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
        self.frames: dict[int, dict[int, np.ndarray]] = {}
        self.info: dict[str, Any] = {}

    def add(self, index: int, frame, mask, original=None) -> str:
        self.frames[index] = lesion_masks(self.document, index)
        return f"{index + 1:04d}"

    def close(self) -> None:
        pass

    def finish(self) -> None:
        """Write the SEG and verify it: every exported frame's lesions, read back, equal the document's."""
        identity = (self.document.workspace.identity if self.document.workspace is not None
                    else self.document.source.identity).digest
        automatic: dict[int, bool] = {}
        for t, masks in self.frames.items():
            for k in masks:
                automatic[k] = automatic.get(k, False) or (self.document.record(t).mask_origin or HUMAN) != HUMAN
        dataset, planes = segmentation_dataset(self.source, self.frames, identity, automatic,
                                               self.document.frame_size)
        dataset.save_as(self.path, enforce_file_format=True)
        order = sorted(self.frames)
        back = read_back(self.path, self.source.sop_instance_uid, order)
        for t in order:
            expected = {k: m for k, m in self.frames[t].items() if m.any()}
            if back[t].keys() != expected.keys() or any(not np.array_equal(back[t][k], expected[k]) for k in expected):
                raise ExportError(f"{self.path}: frame {t + 1}'s lesions read back differ from the masks; nothing "
                                  f"was exported")
        self.info = {"sop_instance_uid": str(dataset.SOPInstanceUID),
                     "series_instance_uid": str(dataset.SeriesInstanceUID),
                     "frame_of_reference": self.source.frame_of_reference_uid is not None,
                     "segments": [{"segment_number": int(s.SegmentNumber), "label": str(s.SegmentLabel),
                                   "tracking_uid": str(s.TrackingUID), "algorithm_type": str(s.SegmentAlgorithmType)}
                                  for s in dataset.SegmentSequence],
                     "seg_frames": len(planes), "carries_patient_and_study_identifiers": True}
