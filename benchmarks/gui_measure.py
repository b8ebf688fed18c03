"""The measurements of `gui_speed.py`, each on the real main window driven as a user drives it (public window
methods and real mouse events through QTest), timed to the end of the canvas paint that shows the result."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from gui_support import PaintClock, rss_mb, run_until, stats_ms


def lesion_centre(t: int, width: int, height: int) -> tuple[int, int]:
    """Where the synthetic video's lesion is in frame t (the same path as `document_memory.write_video`)."""
    return int(width / 2 + width / 4 * np.sin(t / 50)), int(height / 2 + height / 6 * np.cos(t / 70))


def first_frame(window, clock: PaintClock, video: Path, workspace: Path, timeout_s: float = 120) -> dict:
    """Seconds from File > Open (the window's `open_path`) to the end of the first paint showing the frame."""
    view, shown = window.canvas.view, {}

    def on_paint(painted, t_end):
        if painted is view and window.document is not None and "t" not in shown:
            shown["t"] = t_end

    clock.listeners.append(on_paint)
    started = time.perf_counter()
    window.open_path(video, workspace)
    ok = run_until(lambda: "t" in shown, timeout_s)
    clock.listeners.remove(on_paint)
    if not ok:
        raise RuntimeError(f"the first frame of {video} was not shown within {timeout_s} s: {window.messages[-3:]}")
    return {"seconds": round(shown["t"] - started, 4)}


def add_masks(document, frames: range) -> float:
    """A lesion mask on each of `frames` (saved as human edits, as painting would); returns seconds taken."""
    h, w = document.frame_size
    started = time.perf_counter()
    for t in frames:
        mask = np.zeros((h, w), np.uint8)
        cv2.circle(mask, lesion_centre(t, w, h), h // 8, 1, -1)
        document.set_mask(t, mask > 0)
    return time.perf_counter() - started


def add_proposals(document, frames, seed: int = 0) -> float:
    """A model proposal (probability map, mask, confidence) on each of `frames`, written as the proposal job
    writes them (not durable, synced at the end): the timeline then plots areas and confidences along the
    video, as after a real proposal run. Returns seconds taken."""
    h, w = document.frame_size
    radius, rng = h // 8, np.random.default_rng(seed)
    yy, xx = np.mgrid[-2 * radius:2 * radius, -2 * radius:2 * radius].astype(np.float32)
    distance = np.hypot(xx, yy) - radius
    templates = [(1 / (1 + np.exp(np.clip(distance / softness, -30, 30)))).astype(np.float32)
                 for softness in (2.0, 6.0, 15.0, 30.0)]  # sharper or vaguer edges: confidences differ
    started = time.perf_counter()
    for t in frames:
        probability = np.zeros((h, w), np.float32)
        cx, cy = lesion_centre(t, w, h)
        y0, x0 = cy - 2 * radius, cx - 2 * radius
        template = templates[int(rng.integers(len(templates)))]
        ys, xs = slice(max(y0, 0), min(y0 + 4 * radius, h)), slice(max(x0, 0), min(x0 + 4 * radius, w))
        probability[ys, xs] = template[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
        document.set_proposal(t, probability, model="0" * 64, durable=False)
    document.sync()
    return time.perf_counter() - started


def step_through(window, clock: PaintClock, indices, timeout_s: float, sample_rss_every: int = 0) -> dict:
    """Go to each frame of `indices` in turn as soon as the previous one is on screen (the fastest a user can
    scrub frame by frame); frames/s and the go-to-frame -> painted latency."""
    from PySide6.QtCore import QTimer

    view, indices = window.canvas.view, list(indices)
    state = {"k": 0, "pending": False, "t0": 0.0, "rss_peak": rss_mb()}
    latencies: list[float] = []

    def request() -> None:
        if state["k"] < len(indices):
            state["pending"], state["t0"] = True, time.perf_counter()
            window.go_to(indices[state["k"]])

    def on_paint(painted, t_end) -> None:
        if painted is view and state["pending"]:
            state["pending"] = False
            latencies.append(t_end - state["t0"])
            state["k"] += 1
            if sample_rss_every and state["k"] % sample_rss_every == 0:
                state["rss_peak"] = max(state["rss_peak"], rss_mb())
            QTimer.singleShot(0, request)  # not from inside the paint

    clock.listeners.append(on_paint)
    started = time.perf_counter()
    request()
    run_until(lambda: state["k"] >= len(indices), timeout_s)
    elapsed = time.perf_counter() - started
    clock.listeners.remove(on_paint)
    return {"frames": state["k"], "seconds": round(elapsed, 3), "fps": round(state["k"] / elapsed, 2),
            "latency_ms": stats_ms(latencies), "rss_peak_mb": round(state["rss_peak"], 1)}


def brush(window, clock: PaintClock, frame: int, strokes: int = 20, moves: int = 40, hz: float = 125.0,
          pause_s: float = 0.25, radius: int = 10) -> dict:
    """Brush strokes through real mouse events at `hz` (a mouse's report rate), each event injected at its
    scheduled time; latency = scheduled time -> end of the canvas paint after the event was handled (so time
    spent queued behind slow work counts, as it does for the user). Releases commit the stroke (one undo step,
    saved)."""
    from PySide6.QtCore import QPoint, Qt, QTimer
    from PySide6.QtTest import QTest

    from vivim_studio.qt.tools import Tool

    canvas, document = window.canvas, window.document
    viewport = canvas.view.viewport()
    window.go_to(frame)
    run_until(lambda: False, 0.3)  # let the frame settle on screen
    window.set_tool(Tool.BRUSH)
    canvas.set_brush_radius(radius)
    h, w = document.frame_size
    cx, cy = lesion_centre(frame, w, h)
    schedule, t = [], 0.0
    for s in range(strokes):  # short arcs around the lesion's edge, as a correction would be
        angle0 = 2 * np.pi * s / strokes
        for m in range(moves + 2):
            angle = angle0 + 0.6 * m / moves
            x, y = cx + (h // 8) * np.cos(angle), cy + (h // 8) * np.sin(angle)
            kind = "press" if m == 0 else "release" if m == moves + 1 else "move"
            schedule.append((t, kind, canvas.widget_point(x, y)))
            t += 1.0 / hz if kind != "release" else pause_s
    pending: list[tuple[str, float]] = []
    latencies: dict[str, list[float]] = {"press": [], "move": [], "release": []}

    def on_paint(painted, t_end) -> None:
        if painted is canvas.view:
            for kind, intended in pending:
                latencies[kind].append(t_end - intended)
            pending.clear()

    state = {"next": 0}
    start = time.perf_counter() + 0.05
    buttons = Qt.MouseButton.LeftButton

    def inject() -> None:
        now = time.perf_counter()
        while state["next"] < len(schedule) and start + schedule[state["next"]][0] <= now:
            offset, kind, pos = schedule[state["next"]]
            state["next"] += 1
            if kind == "press":
                QTest.mousePress(viewport, buttons, Qt.KeyboardModifier.NoModifier, QPoint(pos))
            elif kind == "move":
                QTest.mouseMove(viewport, QPoint(pos))
            else:
                QTest.mouseRelease(viewport, buttons, Qt.KeyboardModifier.NoModifier, QPoint(pos))
            pending.append((kind, start + offset))

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(inject)
    clock.listeners.append(on_paint)
    committed: list[int] = []  # one undo step per stroke: the commits the document saw
    on_commit = committed.append
    document.events.history_changed.connect(on_commit)
    timer.start(1)
    run_until(lambda: state["next"] >= len(schedule) and not pending, schedule[-1][0] + 30)
    timer.stop()
    clock.listeners.remove(on_paint)
    run_until(lambda: False, 0.3)
    document.events.history_changed.disconnect(on_commit)
    everything = latencies["press"] + latencies["move"] + latencies["release"]
    result = {"events": len(everything), "strokes": strokes, "moves_per_stroke": moves, "mouse_hz": hz,
              "radius": radius, "all_ms": stats_ms(everything), "move_ms": stats_ms(latencies["move"]),
              "press_ms": stats_ms(latencies["press"]), "release_ms": stats_ms(latencies["release"])}
    result["strokes_committed"] = len(committed)
    return result


def inference_latency(window, seconds: float, timer_ms: int = 5, load_timeout_s: float = 600) -> dict:
    """Lateness of a `timer_ms` timer on the GUI thread while the proposal job runs (model loading, then
    `seconds` of proposing), then the job is cancelled. A late timer = a GUI that cannot paint or take input."""
    from PySide6.QtCore import Qt, QTimer

    ticks: list[float] = []
    progress: list[tuple[float, int]] = []
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(timer_ms)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    window.runner.progress.connect(lambda _title, done, _total: progress.append((time.perf_counter(), done)))
    timer.start()
    started = time.perf_counter()
    if not window.propose():
        raise RuntimeError(f"proposals did not start: {window.messages[-2:]}")
    run_until(lambda: bool(progress) or not window.runner.busy, load_timeout_s, poll_ms=20)
    first = progress[0][0] if progress else time.perf_counter()
    run_until(lambda: not window.runner.busy or time.perf_counter() - first > seconds, seconds + 60, poll_ms=20)
    stopped = time.perf_counter()
    window.cancel_job()
    run_until(lambda: not window.runner.busy, 120, poll_ms=20)
    timer.stop()
    ticks_arr = np.asarray(ticks)
    late = np.diff(ticks_arr) - timer_ms / 1000
    loading = late[ticks_arr[1:] < first]
    proposing = late[(ticks_arr[1:] >= first) & (ticks_arr[1:] <= stopped)]
    done = progress[-1][1] if progress else 0
    return {"device": window.status.device_label.text().replace("<b>", "").replace("</b>", ""),
            "model_load_s": round(first - started, 2), "proposing_s": round(stopped - first, 2),
            "frames_proposed": done, "frames_per_s": round(done / max(stopped - first, 1e-9), 2),
            "timer_ms": timer_ms, "lateness_while_proposing_ms": stats_ms(proposing),
            "lateness_while_loading_ms": stats_ms(loading)}
