"""Where bundled assets live: the source tree's `resources/` (checkout, editable install) or the installed
`vivim_resources` package (the same folder, shipped in the wheel)."""

from __future__ import annotations

from pathlib import Path


def resource_dirs() -> list[Path]:
    """Candidate folders, most specific first (those that exist)."""
    dirs = [Path(__file__).resolve().parents[1] / "resources"]
    try:
        import vivim_resources

        dirs.append(Path(vivim_resources.__file__).resolve().parent)
    except ImportError:
        pass
    unique: list[Path] = []
    for d in dirs:
        if d.is_dir() and d not in unique:
            unique.append(d)
    return unique


def resource_path(name: str) -> Path:
    """Path of a bundled asset (e.g. 'affine_prior.safetensors'); the source-tree path when it is missing
    everywhere, so error messages name the expected place."""
    for folder in resource_dirs():
        if (folder / name).exists():
            return folder / name
    return Path(__file__).resolve().parents[1] / "resources" / name
