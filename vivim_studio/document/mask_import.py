"""Masks a site already has, brought into a video's workspace (`vivim-studio import`).

    result = import_masks(document, "site_masks/", status="edited")

What can be imported:
    a folder of PNGs    one per frame, named like the video's frame files (a VTUS `_GT` case folder, a polyp
                        `GT` folder) or by frame number, 1-based as Vivim Studio exports name them (0001.png);
                        binary masks ({0, 255} or {0, 1}: lesion 1) or label maps (each pixel's lesion id);
                        lesion<k>/ sub-folders (an export with --lesions separate) give lesion k's masks
    a NIfTI volume      .nii or .nii.gz of shape (H, W, T), T the video's frame count, values the lesion ids
                        (0 background), as `--format nifti` exports it

Everything is checked before anything is written (sizes, frame numbers, values; each file's header against the
pixel limits before it is decoded); the first problem is an `ImportMasksError` naming the file, what is wrong
and what to do, and the workspace is left as it was. Each imported frame becomes a human frame ("edited" or,
when asked, "accepted") with provenance "imported:<file>", one undo step (undone together). A frame a human
edited or accepted keeps its mask unless `replace_reviewed`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vivim_core.data.readers import DataError, _single_channel
from vivim_core.file_safety import UnsafePathError, is_within, regular_file

from .exceptions import ImportMasksError, SourceError
from .history import StepGroup
from .sources.limits import check_frame_pixels, frame_header_size
from .status import MAX_LESION_ID, FrameStatus

MAX_MASK_FILE_BYTES = 512 << 20
MAX_LABEL_VALUES = 64  # more distinct values than this in one file: not a mask (JPEG noise, a photo)
LESION_FOLDER = re.compile(r"^lesion(\d{1,3})$")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
STATUSES = ("edited", "accepted")


@dataclass
class _Entry:
    """One frame to import: its index, the name shown in provenance and errors, and its file(s)."""

    index: int
    name: str
    path: Path | None = None  # the frame's PNG (binary or labels)
    lesion_paths: dict[int, Path] = field(default_factory=dict)  # lesion id -> its binary PNG


@dataclass
class ImportResult:
    """What `import_masks` did: `imported` frames written, `unchanged` frames that already held exactly this,
    `kept` human-reviewed frames left as they were (no `replace_reviewed`), the lesion ids imported."""

    source: Path
    imported: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)
    lesion_ids: list[int] = field(default_factory=list)


def _is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES)


# PNG folders ----------------------------------------------------------------------------------------------
def _pngs(folder: Path) -> list[Path]:
    """The PNG files directly in `folder` (hidden ones skipped); a file that leads out of it (a link) refused."""
    found = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.name.lower().endswith(".png"):
            continue
        path = Path(entry.path)
        if not is_within(path, folder):
            raise ImportMasksError(f"{path}: a link to a file outside {folder}; copy the mask into the folder")
        if entry.is_file():
            found.append(path)
    return found


def _frame_of(path: Path, by_stem: dict[str, int], num_frames: int) -> int:
    stem = path.name[:-len(".png")]
    if stem in by_stem:
        return by_stem[stem]
    if not stem.isdigit():
        raise ImportMasksError(f"{path}: not named like a frame of the video nor by a frame number (NNNN.png, "
                               f"1-based: 0001.png is the first frame); rename it or remove it from the folder")
    number = int(stem)
    if not 1 <= number <= num_frames:
        raise ImportMasksError(f"{path}: frame number {number}, but the video has frames 1..{num_frames} (names "
                               f"are 1-based frame numbers); is this the mask folder of another video?")
    return number - 1


def _plan_folder(document, folder: Path) -> list[_Entry]:
    frame_paths = getattr(document.source, "frame_paths", None)
    by_stem = {p.stem: i for i, p in enumerate(frame_paths)} if frame_paths else {}
    entries: dict[int, _Entry] = {}

    def entry_for(path: Path, shown: str) -> _Entry:
        index = _frame_of(path, by_stem, document.num_frames)
        return entries.setdefault(index, _Entry(index, shown))

    for path in _pngs(folder):
        entry = entry_for(path, path.name)
        if entry.path is not None:
            raise ImportMasksError(f"{path}: a second mask for frame {entry.index + 1} (beside {entry.path.name}); "
                                   f"keep one mask per frame")
        entry.path = path
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and LESION_FOLDER.match(p.name)):
        lesion = int(LESION_FOLDER.match(sub.name).group(1))
        if not 1 <= lesion <= MAX_LESION_ID:
            raise ImportMasksError(f"{sub}: lesion ids are 1..{MAX_LESION_ID}; rename the folder")
        if not is_within(sub, folder):
            raise ImportMasksError(f"{sub}: a link to a folder outside {folder}; copy the masks into the folder")
        for path in _pngs(sub):
            entry_for(path, f"{sub.name}/{path.name}").lesion_paths[lesion] = path
    if not entries:
        raise ImportMasksError(f"{folder}: no PNG masks in this folder (expected one PNG per frame, named like the "
                               f"frames or 0001.png, 0002.png, ...)")
    return [entries[i] for i in sorted(entries)]


def _read_png(path: Path, frame_size: tuple[int, int]) -> np.ndarray:
    """The values of a mask PNG, uint8 or uint16 (H, W), after checks of its file, header size and channels."""
    try:
        regular_file(path, "mask", MAX_MASK_FILE_BYTES)
        size = frame_header_size(path)
    except (UnsafePathError, SourceError) as exc:
        raise ImportMasksError(str(exc)) from None
    if size != tuple(frame_size):
        raise ImportMasksError(f"{path}: mask is {size[1]}x{size[0]} but the video's frames are {frame_size[1]}x"
                               f"{frame_size[0]}; masks must have their frame's size (not resized)")
    image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImportMasksError(f"{path}: cannot be decoded (corrupt or not a PNG); re-export it")
    try:
        image = _single_channel(image, path)
    except DataError as exc:
        raise ImportMasksError(str(exc)) from None
    if image.dtype not in (np.uint8, np.uint16):
        raise ImportMasksError(f"{path}: {image.dtype} values; masks are 8-bit (or 16-bit) greyscale PNGs")
    return image


def _values(image: np.ndarray) -> set[int]:
    counts = np.bincount(image.ravel(), minlength=2)
    return {int(v) for v in np.flatnonzero(counts)}


def _check_values(path: Path, values: set[int]) -> None:
    if len(values) > MAX_LABEL_VALUES + 1:
        raise ImportMasksError(f"{path}: {len(values)} distinct values: not a mask (a mask holds 0 and 255, or 0 "
                               f"and lesion ids); masks saved as JPEG get noise: export them as PNG")
    high = max(values)
    if high > MAX_LESION_ID and values != {0, 65535}:
        raise ImportMasksError(f"{path}: values up to {high}; a label map holds lesion ids 1..{MAX_LESION_ID} (0 "
                               f"background), a binary mask 0 and 255")


def _labels_of(image: np.ndarray, binary: bool) -> np.ndarray:
    if binary:
        return (image > 0).view(np.uint8)
    return image.astype(np.uint8)


# NIfTI volumes ---------------------------------------------------------------------------------------------
class _Volume:
    """A NIfTI volume (H, W, T) read slice by slice, after its header was checked."""

    def __init__(self, path: Path, document):
        import nibabel as nib

        try:
            regular_file(path, "mask volume")
            self.image = nib.load(path, keep_file_open=True)
        except UnsafePathError as exc:
            raise ImportMasksError(str(exc)) from None
        except Exception as exc:  # nibabel raises several types on a bad header
            raise ImportMasksError(f"{path}: not a readable NIfTI volume ({exc})") from None
        self.path = path
        shape, (h, w), t = tuple(self.image.shape), document.frame_size, document.num_frames
        if len(shape) == 4 and shape[3] == 1:
            shape = shape[:3]
        if len(shape) != 3:
            raise ImportMasksError(f"{path}: a volume of shape {shape}; expected (height, width, frames) = "
                                   f"({h}, {w}, {t})")
        check_frame_pixels(path, shape[0], shape[1], "slices")
        if shape[:2] != (h, w):
            hint = " (rows and columns swapped?)" if shape[:2] == (w, h) else ""
            raise ImportMasksError(f"{path}: slices of {shape[1]}x{shape[0]} pixels{hint}, but the video's frames are "
                                   f"{w}x{h}; the volume must be (height, width, frames) at the frames' size")
        if shape[2] != t:
            raise ImportMasksError(f"{path}: {shape[2]} slices, but the video has {t} frames; the volume needs one "
                                   f"slice per frame, in order")
        slope, inter = getattr(self.image.dataobj, "slope", 1.0), getattr(self.image.dataobj, "inter", 0.0)
        if slope != 1.0 or inter != 0.0:
            raise ImportMasksError(f"{path}: the volume's values are scaled (slope {slope}, intercept {inter}); a "
                                   f"label volume stores the lesion ids as they are")
        self.dtype = self.image.get_data_dtype()
        if self.dtype.kind not in "uif":
            raise ImportMasksError(f"{path}: {self.dtype} values; a label volume holds integers")

    def slice(self, index: int) -> np.ndarray:
        try:
            data = np.asarray(self.image.dataobj[:, :, index] if len(self.image.shape) == 3
                              else self.image.dataobj[:, :, index, 0])
        except Exception as exc:
            raise ImportMasksError(f"{self.path}: slice {index} cannot be read ({exc}); the file is truncated or "
                                   f"damaged") from None
        if data.dtype.kind == "f" and not np.array_equal(data, np.round(data)):
            raise ImportMasksError(f"{self.path}: slice {index} holds fractional values; a label volume holds "
                                   f"integer lesion ids")
        if data.size and (data.min() < 0 or data.max() > MAX_LESION_ID):
            raise ImportMasksError(f"{self.path}: slice {index} holds values {data.min()}..{data.max()}; a label "
                                   f"volume holds 0 (background) and lesion ids 1..{MAX_LESION_ID}")
        return data.astype(np.uint8)


# the import ------------------------------------------------------------------------------------------------
class _Plan:
    """Everything to import, checked: `labels(entry)` gives an entry's label map uint8 (H, W)."""

    def __init__(self, document, source: Path):
        self.document, self.source = document, source
        self.volume: _Volume | None = None
        if source.is_dir():
            self.entries = _plan_folder(document, source)
            self.binary = self._check_folder()
        elif _is_nifti(source):
            self.volume = _Volume(source, document)
            self.entries = [_Entry(i, f"{source.name}#{i + 1}") for i in range(document.num_frames)]
            self.binary = False
            for entry in self.entries:  # every slice decoded once, to check its values before writing
                self.volume.slice(entry.index)
        elif source.exists():
            raise ImportMasksError(f"{source}: not a folder of PNG masks nor a NIfTI volume (.nii, .nii.gz)")
        else:
            raise ImportMasksError(f"{source}: not found; give a folder of PNG masks or a NIfTI volume")

    def _check_folder(self) -> bool:
        """Decode every file once, check it; returns whether the folder's frame files are binary masks (all of
        them {0, 255}, {0, 1} or {0, 65535}) rather than label maps."""
        binary = True
        for entry in self.entries:
            for lesion, path in entry.lesion_paths.items():
                values = _values(_read_png(path, self.document.frame_size))
                if not (values <= {0, 255} or values <= {0, 1} or values <= {0, 65535}):
                    raise ImportMasksError(f"{path}: lesion folders hold binary masks (0 and 255), found values "
                                           f"{sorted(values)[:8]}")
            if entry.path is not None:
                values = _values(_read_png(entry.path, self.document.frame_size))
                _check_values(entry.path, values)
                binary &= values <= {0, 255} or values <= {0, 1} or values <= {0, 65535}
        return binary

    def labels(self, entry: _Entry) -> np.ndarray:
        size = self.document.frame_size
        if self.volume is not None:
            return self.volume.slice(entry.index)
        if not entry.lesion_paths:
            return _labels_of(_read_png(entry.path, size), self.binary)
        labels = np.zeros(size, np.uint8)
        for lesion, path in sorted(entry.lesion_paths.items()):
            mask = _read_png(path, size) > 0
            clash = mask & (labels > 0)
            if clash.any():
                raise ImportMasksError(f"{path}: {int(clash.sum())} pixel(s) belong to another lesion's mask too; a "
                                       f"pixel belongs to one lesion")
            labels[mask] = lesion
        if entry.path is not None and not np.array_equal(_labels_of(_read_png(entry.path, size), True) > 0,
                                                         labels > 0):
            raise ImportMasksError(f"{entry.path}: differs from the union of its lesion folders' masks; the masks "
                                   f"beside the lesion folders must be their union (or be removed)")
        return labels


def import_masks(document, source: Path | str, status: FrameStatus | str = FrameStatus.EDITED,
                 replace_reviewed: bool = False, progress: Callable[[int, int], None] | None = None
                 ) -> ImportResult:
    """Import the masks at `source` into `document` (see the module docstring). Raises ImportMasksError before
    writing anything when a file is unusable."""
    status = FrameStatus(status)
    if status.value not in STATUSES:
        raise ImportMasksError(f"imported masks are marked {' or '.join(STATUSES)}, not {status.value}")
    document.check_writable()
    source = Path(source)
    plan = _Plan(document, source)
    for entry in plan.entries:  # frames assembled from lesion folders: checked whole before anything is written
        if entry.lesion_paths:
            plan.labels(entry)
    result = ImportResult(source)
    group = StepGroup("import masks")
    lesion_ids: set[int] = set()
    for done, entry in enumerate(plan.entries, 1):
        if document.status(entry.index).human_reviewed and not replace_reviewed:
            result.kept.append(entry.index)
        else:
            labels = plan.labels(entry)
            written = document.set_labels(entry.index, labels, "import masks", status=status,
                                          origin=f"imported:{entry.name}", durable=False, group=group)
            (result.imported if written else result.unchanged).append(entry.index)
            lesion_ids.update(document.lesions(entry.index))
        if progress is not None:
            progress(done, len(plan.entries))
    document.sync()
    result.lesion_ids = sorted(lesion_ids)
    return result
