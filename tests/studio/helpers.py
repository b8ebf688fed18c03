"""Helpers of the Studio tests: synthetic videos, frame folders and DICOM cines written by the tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def make_frames(num_frames: int = 12, height: int = 48, width: int = 64, seed: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
    """Textured frames with a moving bright disk: uint8 (T, H, W, 3) RGB and its bool (T, H, W) masks."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.integers(0, 160, (height, width), dtype=np.uint8), (0, 0), 1.5)
    frames, masks = [], []
    for t in range(num_frames):
        image = np.roll(base, t, axis=1).copy()
        mask = np.zeros((height, width), np.uint8)
        cv2.circle(mask, (width // 3 + t, height // 2), max(height // 5, 3), 1, -1)
        image[mask > 0] = 230
        frames.append(np.stack([image, image // 2 + 40, 255 - image], axis=-1))
        masks.append(mask > 0)
    return np.stack(frames).astype(np.uint8), np.stack(masks)


def write_video(path: Path, frames: np.ndarray, fps: float = 10.0, fourcc: str = "mp4v") -> Path:
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} here"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_frame_folder(folder: Path, frames: np.ndarray, names=None, suffix: str = ".png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        name = names[i] if names else f"{i + 1}"
        cv2.imwrite(str(folder / f"{name}{suffix}"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


def write_dicom_cine(path: Path, frames: np.ndarray, photometric: str = "RGB", bits: int = 8,
                     transfer_syntax: str | None = None, frame_time_ms: float = 40.0,
                     pixel_data: bytes | None = None) -> Path:
    """A multi-frame ultrasound DICOM (uint8 RGB or grayscale; 16-bit grayscale with bits=16), with fake
    patient fields that must never leak into exports."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UID, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.3.1")  # Ultrasound Multi-frame Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = UID(transfer_syntax) if transfer_syntax else ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.InstitutionName = "Doe^Jane", "PAT-123456", "Secret Hospital"
    ds.Modality = "US"
    ds.NumberOfFrames = len(frames)
    ds.Rows, ds.Columns = frames.shape[1:3]
    ds.FrameTime = frame_time_ms
    ds.PixelSpacing = [0.1, 0.2]
    if photometric == "RGB":
        ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
        data = np.ascontiguousarray(frames, dtype=np.uint8)
    else:
        ds.SamplesPerPixel = 1
        grey = frames[..., 0] if frames.ndim == 4 else frames
        data = grey.astype(np.uint16) * 257 if bits == 16 else grey.astype(np.uint8)
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if pixel_data is not None:
        from pydicom.encaps import encapsulate
        ds.PixelData = encapsulate([pixel_data] * len(frames))
        ds["PixelData"].VR = "OB"
    else:
        ds.PixelData = data.tobytes()
        ds["PixelData"].VR = "OW" if bits == 16 else "OB"
    ds.save_as(path, enforce_file_format=True)
    return path
