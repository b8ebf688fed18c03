"""Regenerate the README screenshots of Vivim Studio: the real main window, driven through its public methods.

    xvfb-run -s "-screen 0 1600x1000x24" python docs/make_screenshots.py --checkpoint CKPT [--out docs]
    ... --size 1350x688      # the window as it opens on a 1366x768 laptop (task bar and title bar aside)

Writes docs/studio-proposals.png (proposals arriving while the model runs: progress bar, heat map) and
docs/studio-main.png (a review in progress: accepted, edited and proposed frames on the timeline). Uses the
thyroid demo video (synthetic ultrasound). Proposals run at the checkpoint's training size (its provenance),
so a small CPU-trained checkpoint gives the masks it was trained to give.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--task", choices=("thyroid", "polyp"), default="thyroid")
    parser.add_argument("--size", default="1500x940", metavar="WxH", help="window size (default 1500x940)")
    args = parser.parse_args()

    import pyqtgraph as pg
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from vivim_studio.services.checkpoint_header import read_metadata
    from vivim_studio.services.demo import demo_video
    from vivim_studio.qt.main_window import MainWindow, StudioOptions
    from vivim_studio.qt.theme import apply_dark_theme

    app = QApplication(sys.argv[:1])
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)
    apply_dark_theme(app)

    def wait_for(predicate, timeout_s: float = 600) -> None:
        """Run the event loop (no processEvents pumping) until predicate() holds."""
        loop, timer, deadline = QEventLoop(), QTimer(), time.monotonic() + timeout_s
        timer.timeout.connect(lambda: loop.quit() if predicate() or time.monotonic() > deadline else None)
        timer.start(50)
        loop.exec()
        timer.stop()

    def grab(window, name: str) -> None:
        wait_for(lambda: True)  # one more turn of the loop: pending repaints
        path = args.out / name
        window.grab().save(str(path))
        print(f"wrote {path}")

    size = (read_metadata(args.checkpoint).get("provenance") or {}).get("train_size") or [256, 256]
    with tempfile.TemporaryDirectory() as tmp:
        video = demo_video(args.task, Path(tmp))
        window = MainWindow(StudioOptions(checkpoint=args.checkpoint, device="cpu", interactive=False,
                                          probe_device=False, settings_file=Path(tmp) / "settings.ini",
                                          inference=dict(size=tuple(size), batch_size=1)))
        window.resize(*(int(v) for v in args.size.lower().split("x")))
        window.show()
        window.open_path(video)
        wait_for(lambda: window.document is not None and not window.runner.busy)
        document = window.document
        window.go_to(20)
        window.actions_by_id["toggle_heatmap"].setChecked(True)
        window.propose()
        wait_for(lambda: window.status.progress.value() >= document.num_frames * 0.6)
        grab(window, "studio-proposals.png")
        wait_for(lambda: not window.runner.busy)

        # a review in progress: the first frames accepted, one corrected by hand, the rest still proposed
        window.actions_by_id["toggle_heatmap"].setChecked(False)
        window.accept_range(range(0, 16), include_edited=True)
        wait_for(lambda: not window.runner.busy)
        window.go_to(17)
        mask = document.mask(17)
        if mask.any():  # the expert widens the lower right edge a little: the frame becomes "edited"
            import numpy as np

            rows, cols = np.nonzero(mask)
            x, y = float(cols.max()), float(rows.max())
            document.paint_stroke(17, [(x - 18, y - 4), (x - 8, y - 10), (x - 2, y - 20)], 5)
        grab(window, "studio-main.png")
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
