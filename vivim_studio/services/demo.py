"""The demo video: a synthetic ultrasound (thyroid) or endoscopy (polyp) clip made by `vivim_core`'s
generators, written once into a cache folder, so that reopening the demo resumes its workspace like any other
video.

    path = demo_video("thyroid", cache_folder)      # cache_folder/thyroid-demo.mp4 (or .avi)
"""

from __future__ import annotations

import os
from pathlib import Path

DEMO_TASKS = {"thyroid": "ultrasound", "polyp": "endoscopy"}
DEMO_FRAMES, DEMO_SIZE, DEMO_FPS, DEMO_SEED = 48, (256, 256), 15.0, 7


def demo_video(task: str, folder: Path) -> Path:
    """The cached demo video of `task` in `folder` (written on first use; written under a temporary name and
    renamed, so an interrupted first run never leaves half a video)."""
    if task not in DEMO_TASKS:
        raise ValueError(f"unknown demo task {task!r}; choose one of {', '.join(DEMO_TASKS)}")
    folder = Path(folder)
    existing = sorted(p for p in folder.glob(f"{task}-demo.*") if p.is_file() and p.suffix in (".mp4", ".avi"))
    if existing:
        return existing[0]
    from vivim_core.data.synthetic import make_video, write_video_file

    frames, _masks = make_video(DEMO_TASKS[task], DEMO_FRAMES, DEMO_SIZE[0], DEMO_SIZE[1], DEMO_SEED)
    folder.mkdir(parents=True, exist_ok=True)
    written = write_video_file(folder / f".{task}-demo.partial.mp4", frames, fps=DEMO_FPS)
    final = folder / f"{task}-demo{written.suffix}"
    os.replace(written, final)
    return final
