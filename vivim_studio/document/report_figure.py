"""The report's figure, drawn with OpenCV alone (no plotting package): for each lesion its long axis over the
frames, then each lesion's key frame with its outline and calipers (long axis, short axis) and its numbers.

    png_bytes = draw_report("clip.dcm", 120, summaries, {frame: rgb or None}, {lesion: mask}, (H, W))

Lengths are plotted in millimetres where a calibration backs them, in pixels (and labelled "uncalibrated")
for a lesion none of whose frames is calibrated. Text is ASCII (OpenCV's Hershey fonts).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

WIDTH = 1000
CHART_HEIGHT = 210
THUMB_WIDTH = 480
TEXT_BAND = 84
BACKGROUND, INK, GRID = (255, 255, 255), (30, 30, 30), (225, 225, 225)
LESION_COLOURS = ((40, 110, 230), (40, 170, 60), (200, 80, 40), (160, 60, 170), (20, 160, 200), (90, 90, 90))  # BGR
LONG_AXIS, SHORT_AXIS = (0, 215, 255), (255, 200, 0)  # BGR: yellow, cyan
FONT = cv2.FONT_HERSHEY_SIMPLEX


def colour(lesion: int) -> tuple[int, int, int]:
    return LESION_COLOURS[(lesion - 1) % len(LESION_COLOURS)]


def _ascii(text: str) -> str:
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in text)


def _text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float = 0.5, ink=INK, bold: bool = False):
    cv2.putText(image, _ascii(text), origin, FONT, scale, ink, 2 if bold else 1, cv2.LINE_AA)


def _nice_step(span: float, count: int = 5) -> float:
    raw = max(span, 1e-9) / count
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _chart(summary, num_frames: int) -> np.ndarray:
    """One lesion's long axis over the frames: mm over its calibrated frames, else px."""
    image = np.full((CHART_HEIGHT, WIDTH, 3), BACKGROUND, np.uint8)
    left, right, top, bottom = 70, WIDTH - 25, 34, CHART_HEIGHT - 38
    calibrated = summary.key.physical is not None
    points = [(row.frame, row.long_axis_mm if calibrated else row.pixels.long_axis.length) for row in summary.rows
              if (row.physical is not None) == calibrated]
    unit = "mm" if calibrated else "px, uncalibrated"
    skipped = len(summary.rows) - len(points)
    title = f"Lesion {summary.lesion}: long axis over frames ({unit})"
    if skipped:
        title += f"; {skipped} uncalibrated frame(s) not shown"
    _text(image, title, (left, 22), 0.55, colour(summary.lesion), bold=True)
    top_value = max(value for _, value in points) * 1.15
    y_step = _nice_step(top_value)
    x_step = max(1, int(_nice_step(num_frames, 8)))

    def to_pixel(frame: float, value: float) -> tuple[int, int]:
        x = left + (frame / max(num_frames - 1, 1)) * (right - left)
        y = bottom - value / top_value * (bottom - top)
        return int(round(x)), int(round(y))

    value = 0.0
    while value <= top_value:
        y = to_pixel(0, value)[1]
        cv2.line(image, (left, y), (right, y), GRID, 1)
        _text(image, f"{value:g}", (8, y + 4), 0.42)
        value += y_step
    for number in range(1, num_frames + 1):
        if number == 1 or number % x_step == 0:
            x = to_pixel(number - 1, 0)[0]
            cv2.line(image, (x, bottom), (x, bottom + 4), INK, 1)
            _text(image, str(number), (x - 8, bottom + 18), 0.42)
    _text(image, "frame", (right - 40, CHART_HEIGHT - 6), 0.42)
    cv2.rectangle(image, (left, top), (right, bottom), INK, 1)
    previous = None
    for frame, value in points:
        here = to_pixel(frame, value)
        if previous is not None and frame == previous[0] + 1:
            cv2.line(image, previous[1], here, colour(summary.lesion), 2, cv2.LINE_AA)
        cv2.circle(image, here, 2, colour(summary.lesion), -1, cv2.LINE_AA)
        previous = (frame, here)
    key_value = summary.key.long_axis_mm if calibrated else summary.key.pixels.long_axis.length
    key = to_pixel(summary.key.frame, key_value)
    cv2.circle(image, key, 6, INK, 2, cv2.LINE_AA)
    _text(image, f"largest: {key_value:.1f} {unit.split(',')[0]} (frame {summary.key.frame + 1})",
          (min(key[0] + 10, right - 260), max(key[1] - 8, top + 14)), 0.45)
    return image


def _caliper(image: np.ndarray, ends, scale: float, ink) -> None:
    (x0, y0), (x1, y1) = ((x * scale, y * scale) for x, y in ends)
    p, q = (int(round(x0)), int(round(y0))), (int(round(x1)), int(round(y1)))
    cv2.line(image, p, q, ink, 2, cv2.LINE_AA)
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    nx, ny = -(y1 - y0) / length * 6, (x1 - x0) / length * 6  # end ticks across the caliper
    for x, y in ((x0, y0), (x1, y1)):
        cv2.line(image, (int(round(x - nx)), int(round(y - ny))), (int(round(x + nx)), int(round(y + ny))), ink, 2,
                 cv2.LINE_AA)


def _key_frame(summary, frame: np.ndarray | None, mask: np.ndarray | None, frame_size) -> np.ndarray:
    """The key frame scaled to THUMB_WIDTH with the lesion's outline and calipers, its numbers below."""
    height, width = frame_size
    scale = THUMB_WIDTH / width
    thumb_height = max(1, int(round(height * scale)))
    if frame is None:
        picture = np.full((thumb_height, THUMB_WIDTH, 3), 60, np.uint8)
        _text(picture, "video not available: outline only", (10, 24), 0.5, (230, 230, 230))
    else:
        picture = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), (THUMB_WIDTH, thumb_height),
                             interpolation=cv2.INTER_AREA)
    if mask is not None:
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        scaled = [np.round((c.astype(np.float64) + 0.5) * scale - 0.5).astype(np.int32) for c in contours]
        cv2.polylines(picture, scaled, True, colour(summary.lesion), 1, cv2.LINE_AA)
    key = summary.key
    measured = key.physical or key.pixels
    for axis, ink in ((measured.long_axis, LONG_AXIS), (measured.short_axis, SHORT_AXIS)):
        if axis is not None:
            _caliper(picture, axis.ends, scale, ink)
    band = np.full((TEXT_BAND, THUMB_WIDTH, 3), BACKGROUND, np.uint8)
    _text(band, f"Lesion {summary.lesion}, frame {key.frame + 1} ({key.status.value})", (4, 18), 0.5,
          colour(summary.lesion), bold=True)
    if key.physical is not None:
        m = key.physical
        _text(band, f"long {m.long_axis_mm:.1f} mm   short {m.short_axis_mm:.1f} mm   area {m.area_mm2:.1f} mm2",
              (4, 40), 0.5)
        _text(band, f"calibration: {key.spacing_source}"[:70], (4, 60), 0.4)
    else:
        m = key.pixels
        _text(band, f"long {m.long_axis.length:.1f} px   short {m.short_axis.length:.1f} px   area {m.area_px} px",
              (4, 40), 0.5)
        _text(band, "UNCALIBRATED: lengths in pixels, no millimetres", (4, 60), 0.45, (20, 20, 200))
    if key.touches_edge:
        _text(band, "touches the image edge: may be larger", (4, 76), 0.42, (20, 20, 200))
    return np.vstack([picture, band])


def draw_report(name: str, num_frames: int, summaries, frames: dict, masks: dict, frame_size) -> bytes:
    """PNG bytes of the whole figure (see the module docstring). `frames`: {frame index: RGB uint8 or None};
    `masks`: {lesion: bool (H, W) on its key frame}."""
    header = np.full((54, WIDTH, 3), BACKGROUND, np.uint8)
    _text(header, f"Vivim Studio lesion report: {name}"[:80], (10, 22), 0.6, bold=True)
    _text(header, "Information, not a diagnosis. Frames numbered from 1. Yellow: long axis; cyan: short axis.",
          (10, 44), 0.45)
    parts = [header]
    if not summaries:
        empty = np.full((60, WIDTH, 3), BACKGROUND, np.uint8)
        _text(empty, "No lesion on the measured frames.", (10, 36), 0.55)
        parts.append(empty)
    parts.extend(_chart(summary, num_frames) for summary in summaries)
    thumbs = [_key_frame(s, frames.get(s.key.frame), masks.get(s.lesion), frame_size) for s in summaries]
    for start in range(0, len(thumbs), 2):
        pair = thumbs[start:start + 2]
        row = np.full((max(t.shape[0] for t in pair) + 10, WIDTH, 3), BACKGROUND, np.uint8)
        for column, thumb in enumerate(pair):
            x = 13 + column * (THUMB_WIDTH + 14)
            row[5:5 + thumb.shape[0], x:x + THUMB_WIDTH] = thumb
        parts.append(row)
    ok, encoded = cv2.imencode(".png", np.vstack(parts))
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 BGR image
        raise RuntimeError("the report figure could not be encoded as PNG")
    return encoded.tobytes()
