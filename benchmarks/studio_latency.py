"""What the expert waits for, end to end through the real main window and the Studio's own services.

    python benchmarks/studio_latency.py --device cpu --variants vivim-tiny --out benchmarks/results/x.json
    python benchmarks/studio_latency.py --device cuda --variants vivim-tiny,vivim-b3

For each video (a generated 1,000-frame 1920x1080 video, and the real sample when ../shared is there) and each
model variant, in a fresh process each time (so "cold" includes starting torch, loading the model and, on a GPU,
compiling kernels; the kernel caches on disk are kept between processes, as for a user's second session):

  cold_first_proposal_s     pressing Propose (Ctrl+P) -> the first proposal painted on screen, nothing loaded yet
  warm_first_proposal_s     the same again in that process (model loaded)
  frames_per_s              frames proposed per second, until the last proposal is saved (warm run)
  lateness_p99_ms           lateness of a 5 ms GUI timer while proposing: a late timer is a GUI that cannot
                            paint or take input
  loop_s                    one round of the learning loop after 3 accepted frames: the bounded fine-tune plus the
                            re-proposal of every frame no human touched (vivim-tiny-size checkpoints with prompt
                            inputs; the variant's checkpoint otherwise gets prompt inputs added, untrained)

Prints a table and writes JSON (machine, date, command).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
SAMPLE = HERE.parent.parent / "shared" / "data" / "vtus-sample" / "Train" / "0002"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--variants", default="vivim-tiny")
    parser.add_argument("--frames", type=int, default=1000, help="frames of the generated 1080p video")
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--videos", default="generated,sample")
    parser.add_argument("--workdir", type=Path, help="keep generated videos and checkpoints here")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(_worker(json.loads(args.worker))), flush=True)
        return 0

    from gui_support import machine_info, write_record  # noqa: E402 (Qt loads on use)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vivim-latency-"))
    workdir.mkdir(parents=True, exist_ok=True)
    videos = {}
    if "generated" in args.videos:
        videos["generated"] = _generated_video(workdir, args.frames, args.size)
    if "sample" in args.videos and SAMPLE.is_dir():
        videos["sample"] = _copy_of_sample(workdir)
    rows = []
    for variant in args.variants.split(","):
        checkpoint = _checkpoint(workdir, variant)
        for name, video in videos.items():
            config = {"video": name, "path": str(video), "variant": variant, "checkpoint": str(checkpoint),
                      "device": args.device, "workdir": str(workdir / f"run-{variant}-{name}")}
            started = time.perf_counter()
            out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(config)], capture_output=True,
                                 text=True, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
            lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
            if out.returncode or not lines:
                raise SystemExit(f"worker failed for {variant} on {name}:\n{out.stderr[-3000:]}")
            row = {"video": name, "variant": variant, **json.loads(lines[-1][7:]),
                   "process_s": round(time.perf_counter() - started, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    _table(rows)
    if args.out:
        import platform

        import torch

        machine = {**machine_info(), "torch": torch.__version__,
                   "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
        write_record(args.out, "studio_latency", {"frames": args.frames, "size": args.size, "device": args.device},
                     {"rows": rows}, machine)
        del platform
    return 0


def _table(rows: list[dict]) -> None:
    columns = ["video", "variant", "device", "frames", "cold_first_proposal_s", "warm_first_proposal_s",
               "frames_per_s", "lateness_p99_ms", "loop_s"]
    print("\n" + "  ".join(f"{c:>22s}" for c in columns))
    for row in rows:
        print("  ".join(f"{str(row.get(c, '')):>22s}" for c in columns))


def _generated_video(workdir: Path, frames: int, size: str) -> Path:
    """A synthetic ultrasound-like video at full HD (made once, kept in workdir)."""
    from vivim_core.data.synthetic import make_video, write_video_file

    width, height = (int(v) for v in size.lower().split("x"))
    path = workdir / f"generated-{frames}-{width}x{height}.mp4"
    if not path.exists() and not path.with_suffix(".avi").exists():
        chunks = []
        for start in range(0, frames, 100):  # small pieces: a 1,000-frame 1080p video is 6 GB decoded
            part, _ = make_video("ultrasound", min(100, frames - start), height, width, seed=start)
            chunks.append(part)
        path = write_video_file(path, __import__("numpy").concatenate(chunks))
    return path if path.exists() else path.with_suffix(".avi")


def _copy_of_sample(workdir: Path) -> Path:
    """A copy of the real sample (no workspace is ever written beside the shared data)."""
    import shutil

    target = workdir / "sample" / "0002"
    if not target.exists():
        shutil.copytree(SAMPLE, target)
    return target


def _checkpoint(workdir: Path, variant: str) -> Path:
    """The bundled checkpoint for vivim-tiny; a fresh one with prompt inputs for other variants (timing only)."""
    from vivim_core.resources import resource_path

    if variant == "vivim-tiny":
        return resource_path("vivim-tiny-thyroid.safetensors")
    path = workdir / f"{variant}-untrained.safetensors"
    if not path.exists():
        from vivim_core.engine.checkpoint import save_checkpoint
        from vivim_core.model import add_prompt_inputs, build_model

        save_checkpoint(add_prompt_inputs(build_model(variant)), path, {"train_size": [256, 256], "clip_length": 5})
    return path


def _worker(config: dict) -> dict:
    """One configuration in this fresh process: cold and warm proposals, lateness, one learning round."""
    import numpy as np
    from PySide6.QtCore import Qt, QTimer

    from gui_support import PaintClock, make_app, make_window, run_until, stats_ms
    from vivim_studio.document import FrameStatus

    workdir = Path(config["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    app = make_app()
    clock = PaintClock()
    window = make_window(workdir, Path(config["checkpoint"]), config["device"], 1350, 688)
    assert window.open_path(Path(config["path"]), workdir / "workspace.vivim")
    run_until(lambda: window.document is not None and not window.runner.busy, 600)
    document = window.document
    result = {"device": config["device"], "frames": document.num_frames,
              "frame_size": f"{document.frame_size[1]}x{document.frame_size[0]}"}

    def propose_and_time() -> dict:
        ticks: list[float] = []
        timer = QTimer()
        timer.setTimerType(Qt.TimerType.PreciseTimer)
        timer.setInterval(5)
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        first_paint: list[float] = []
        target = document.current_frame
        seen = {"proposed": False}

        def on_paint(view, t_end):
            if not first_paint and seen["proposed"] and view is window.canvas.view:
                first_paint.append(t_end)

        def on_status(frame):
            if frame == target and document.status(frame) == FrameStatus.PROPOSED:
                seen["proposed"] = True
                window.canvas.view.viewport().update()

        window.bridge.status_changed.connect(on_status)
        window.bridge.probability_changed.connect(on_status)
        clock.listeners.append(on_paint)
        timer.start()
        started = time.perf_counter()
        assert window.propose(), window.messages[-2:]
        run_until(lambda: not window.runner.busy, 3600, poll_ms=5)
        document.sync()
        ended = time.perf_counter()
        timer.stop()
        clock.listeners.remove(on_paint)
        late = np.diff(np.asarray(ticks)) - 0.005
        first = (first_paint[0] - started) if first_paint else None
        return {"first_proposal_s": None if first is None else round(first, 3), "total_s": round(ended - started, 2),
                "lateness_ms": stats_ms(late)}

    cold = propose_and_time()
    warm = propose_and_time()
    result.update(cold_first_proposal_s=cold["first_proposal_s"], cold_total_s=cold["total_s"],
                  cold_lateness_ms=cold["lateness_ms"], warm_first_proposal_s=warm["first_proposal_s"],
                  frames_per_s=round(document.num_frames / warm["total_s"], 1),
                  lateness_p99_ms=warm["lateness_ms"].get("p99"), warm_lateness_ms=warm["lateness_ms"])
    # one learning round of the GUI after 3 accepted frames (their proposals stand in for the expert's masks)
    window.actions_by_id["learn"].setChecked(False)  # started by hand below, not by the quiet-time timer
    for index in np.linspace(0, document.num_frames - 1, 3).astype(int):
        document.accept(int(index))
    outcome: list = []
    window.learning_runner.finished.connect(lambda *args: outcome.append(time.perf_counter()))
    started = time.perf_counter()
    assert window.start_learning_round()
    run_until(lambda: not window.learning_runner.busy, 3600, poll_ms=5)
    result.update(loop_s=round(time.perf_counter() - started, 2), loop_budget_s=window.options.learning)
    window.close()
    app.processEvents()
    return result


if __name__ == "__main__":
    sys.exit(main())
