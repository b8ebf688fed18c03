"""Helpers of the hardening tests: small synthetic inputs, CLI runners that check the user-visible
outcome, file-tree snapshots, a simulated read-only file system and DICOM files with patient fields."""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import os
import pickle
import stat
from pathlib import Path

import cv2
import numpy as np

MODEL_SIZE = 64  # the model input size every test uses (multiple of 32, fast on 2 CPU cores)


# inputs --------------------------------------------------------------------------------------------------
def make_frames(num_frames: int = 6, height: int = 48, width: int = 64, seed: int = 0
                ) -> tuple[np.ndarray, np.ndarray]:
    """Textured uint8 (T, H, W, 3) RGB frames with a moving bright disk, and its bool (T, H, W) masks."""
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


def write_images(folder: Path, images, names=None, suffix: str = ".png") -> Path:
    """Write RGB frames (H, W, 3) or grey/16-bit images (H, W) as `folder/<name><suffix>`."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        name = names[i] if names else f"{i + 1:04d}"
        data = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
        assert cv2.imwrite(str(folder / f"{name}{suffix}"), data)
    return folder


def write_video(path: Path, frames: np.ndarray, fourcc: str = "MJPG", fps: float = 10.0) -> Path:
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} here"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def tiny_model(seed: int = 0):
    """A very small random Vivim (fast on 2 CPU cores)."""
    import torch
    import vivim_core

    torch.manual_seed(seed)
    return vivim_core.build_model("vivim-tiny", embed_dims=(8, 16, 32, 64), transformer_depths=(1, 1, 1, 1),
                                  temporal_depths=(1, 0, 0, 1), num_heads=(1, 1, 1, 1), decoder_dim=32)


def wrong_variant_checkpoint(tiny_checkpoint, path):
    """The tiny model's tensors under a header that says vivim-b1 (a file altered by hand, or by a tool)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from vivim_core.config import get_config

    with safe_open(str(tiny_checkpoint), "pt") as f:
        metadata = dict(f.metadata())
    metadata["model_config"] = get_config("vivim-b1").to_json()
    save_file(load_file(str(tiny_checkpoint)), str(path), metadata=metadata)
    return path


PATIENT_FIELDS = {  # DICOM keyword -> a value that must never appear in any export or workspace
    "PatientName": "Zyxwell^Quintessa", "PatientID": "PID-7730219", "PatientBirthDate": "19330517",
    "InstitutionName": "Hospital Obscurum", "AccessionNumber": "ACC-55811", "StudyDate": "19990909",
    "ReferringPhysicianName": "Vexmoor^Oltan", "OperatorsName": "Quorrant^Ilsabet", "StudyID": "STUDY-4417",
    "PatientAddress": "12 Umbralane Court", "StudyDescription": "Zyxstudy^Thyrozyx",
}


def write_dicom(path: Path, frames: np.ndarray | None, with_patient_fields: bool = True) -> Path:
    """A multi-frame RGB ultrasound DICOM (frames None: no pixel data at all) carrying `PATIENT_FIELDS`."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.3.1")  # Ultrasound Multi-frame Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    if with_patient_fields:
        for keyword, value in PATIENT_FIELDS.items():
            setattr(ds, keyword, value)
    ds.Modality = "US"
    if frames is not None:
        ds.NumberOfFrames = len(frames)
        ds.Rows, ds.Columns = frames.shape[1:3]
        ds.FrameTime = 40.0
        ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
        ds.PhotometricInterpretation = "RGB"
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit, ds.PixelRepresentation = 7, 0
        ds.PixelData = np.ascontiguousarray(frames, dtype=np.uint8).tobytes()
        ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


# checking what the user sees -----------------------------------------------------------------------------
def run_cli(main, argv: list[str], capsys) -> tuple[int, str, str]:
    """Run a CLI `main` in-process: (exit code, stdout, stderr). Never lets an exception escape unseen."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_user_error(code: int, err: str, *needles: str, expected_code: int = 2) -> str:
    """The CLI failed the way a user should see it: the exit code, no traceback, an `error:` line that contains
    every needle (file names, the problem, the fix). Returns that line."""
    assert code == expected_code, f"exit code {code}, stderr:\n{err}"
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert lines, f"no error line in:\n{err}"
    for needle in needles:
        assert any(needle in line for line in lines), f"{needle!r} not in the error lines:\n{err}"
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file (bytes) and folder (None) under `folder`, by relative path; the lock file is left out (its
    content is the pid of the last process that locked the workspace)."""
    folder = Path(folder)
    if not folder.exists():
        return {}
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*")) if p.name != ".lock"}


def all_text_of_tree(folder: Path) -> str:
    """Names and contents of every file under `folder` (gzip members decompressed), as one string."""
    import gzip

    parts = []
    for path in sorted(Path(folder).rglob("*")):
        parts.append(str(path.relative_to(folder)))
        if path.is_file():
            data = path.read_bytes()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            parts.append(data.decode("latin-1"))
    return "\n".join(parts)


# a read-only folder ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def read_only_tree(folder: Path):
    """Make `folder` read-only for this process: chmod (enough for a normal user) and, since root ignores
    permissions (CI runs as root), also refuse every write under it with EROFS, as a read-only mount would."""
    folder = Path(folder)
    root = os.path.realpath(folder)
    modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
    for p, mode in modes.items():
        p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))

    def inside(path) -> bool:
        try:
            real = os.path.realpath(os.fspath(path))
        except TypeError:
            return False
        return real == root or real.startswith(root + os.sep)

    def refuse(path):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    real_open, real_os_open = builtins.open, os.open
    saved = {name: getattr(os, name) for name in ("replace", "rename", "unlink", "remove", "mkdir", "rmdir")}

    def fake_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and any(c in mode for c in "wax+") and inside(file):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND) and inside(path):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def guarded(name):
        real = saved[name]

        def call(*args, **kwargs):
            for arg in args[:2]:
                if isinstance(arg, (str, bytes, os.PathLike)) and inside(arg):
                    refuse(arg)
            return real(*args, **kwargs)
        return call

    builtins.open = io.open = fake_open
    os.open = fake_os_open
    for name in saved:
        setattr(os, name, guarded(name))
    try:
        yield folder
    finally:
        builtins.open = io.open = real_open
        os.open = real_os_open
        for name, function in saved.items():
            setattr(os, name, function)
        for p, mode in modes.items():
            p.chmod(mode)


# a pickle that would run code ----------------------------------------------------------------------------
class MarkerPayload:
    """Unpickling this writes `marker`: the proof that something executed code from a file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "code from a pickle ran"))


def write_pickle_payloads(folder: Path, marker: Path, name: str = "model") -> list[Path]:
    """The same code-running payload as a raw pickle and as a torch.save zip, both named .safetensors."""
    import torch

    raw = folder / f"{name}-raw.safetensors"
    raw.write_bytes(pickle.dumps({"state_dict": MarkerPayload(marker)}, protocol=4))
    zipped = folder / f"{name}-zip.safetensors"
    torch.save({"state_dict": MarkerPayload(marker)}, zipped)
    return [raw, zipped]
