"""Synthetic B-mode ultrasound videos with hypoechoic nodules (thyroid-like), for tests and demos.

The image is built as an echogenicity map (tissue layers with wavy interfaces, parenchyma texture, an
anechoic vessel as a distractor, one or two nodules) that the probe sees with a slow drift, multiplied by
speckle (Rayleigh, elongated laterally, partly coherent between frames), attenuated with depth, log-compressed.
Nodules are darker than the parenchyma but textured, with a partial bright halo, posterior enhancement or
shadowing, and move, breathe and deform; the vessel is darker still but is not a lesion, so a threshold
cannot solve the task.
"""

from __future__ import annotations

import cv2
import numpy as np

from .synthetic_shapes import BlobTrack, smooth_noise, smooth_path, soft_inside


def _tissue_map(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Echogenicity of the static anatomy on a canvas larger than the frame: float32 (H', W'), about 0..1."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    scale = min(height, width)
    image = np.full((height, width), 0.55, np.float32)
    # Layers from skin to deep muscle: each band below a gently curved interface gets its own level;
    # muscle-like bands get a striated (laterally elongated) texture.
    depth = 0.0
    striation = smooth_noise(rng, (height, width), 0.05 * scale, 0.006 * scale + 0.4)
    for _ in range(rng.integers(3, 6)):
        depth += rng.uniform(0.08, 0.2)
        interface = depth * height + sum(
            rng.uniform(0.005, 0.03) * height
            * np.sin(2 * np.pi * xs / (width * rng.uniform(0.4, 2.0)) + rng.uniform(0, 6.3))
            for _ in range(2))
        below = ys > interface
        level = rng.uniform(0.25, 0.8)
        band = level * (1 + rng.uniform(0, 0.35) * striation)
        image = np.where(below, band, image)
        bright_line = np.exp(-((ys - interface) / max(0.006 * height, 0.6)) ** 2)
        image += rng.uniform(0.2, 0.8) * bright_line
    # Parenchyma texture: coarse and fine echogenicity variations.
    image *= (1 + 0.25 * smooth_noise(rng, (height, width), 0.06 * scale)
              + 0.12 * smooth_noise(rng, (height, width), 0.012 * scale))
    return np.clip(image, 0.02, None)


def _fan_mask(height: int, width: int, half_angle: float) -> np.ndarray:
    """Sector of a convex probe (apex above the frame): bool (H, W)."""
    apex_y = -0.35 * height
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = np.arctan2(xs - width / 2, ys - apex_y)
    radius = np.hypot(xs - width / 2, ys - apex_y)
    return (np.abs(angle) < half_angle) & (radius > 0.4 * height) & (radius < 1.33 * height)


def _speckle(rng: np.random.Generator, shape: tuple[int, int], grain: float) -> np.ndarray:
    """Fully developed speckle: Rayleigh amplitudes smoothed laterally (the beam is wider than the pulse is long),
    normalised to mean 1: float32 (H, W)."""
    amplitude = rng.rayleigh(1.0, shape).astype(np.float32)
    amplitude = cv2.GaussianBlur(amplitude, (0, 0), sigmaX=1.0 * grain, sigmaY=0.5 * grain)
    amplitude /= amplitude.mean()
    return np.clip(1 + 1.8 * (amplitude - 1), 0.05, None)  # smoothing lowers the contrast; restore it


def make_ultrasound_video(num_frames: int = 30, height: int = 256, width: int = 256, seed: int = 0,
                          probe: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """A synthetic thyroid-ultrasound-like video and its nodule masks, deterministic by `seed`.

    Returns frames uint8 (T, H, W, 3) RGB (grey replicated) and masks uint8 (T, H, W) in {0, 255}.
    `probe`: "linear" (rectangular field), "convex" (fan-shaped sector) or "auto" (chosen by the seed).
    """
    rng = np.random.default_rng(seed)
    scale = min(height, width)
    if probe == "auto":
        probe = "convex" if rng.random() < 0.35 else "linear"
    margin = int(0.15 * scale) + 2
    tissue = _tissue_map(rng, height + 2 * margin, width + 2 * margin)
    field = _fan_mask(height, width, rng.uniform(0.55, 0.75)) if probe == "convex" else np.ones((height, width), bool)
    grain = max(0.5, scale / 256 * rng.uniform(0.8, 1.3))
    static_speckle = _speckle(rng, (height + 2 * margin, width + 2 * margin), grain)
    probe_x = smooth_path(rng, num_frames, 0.05 * scale)
    probe_y = smooth_path(rng, num_frames, 0.02 * scale)

    nodules = []
    for index in range(1 if rng.random() < 0.7 else 2):
        leaves = rng.random() < 0.3
        center = (rng.uniform(0.25, 0.75) * width, rng.uniform(0.35, 0.7) * height)
        track = BlobTrack.random(rng, num_frames, center, rng.uniform(0.08, 0.2) * scale * (0.7 if index else 1.0),
                                 travel=0.08 * scale, exit_drift=(0.012 * scale) if leaves else 0.0)
        nodules.append({
            "track": track,
            "level": rng.uniform(0.25, 0.65),          # relative echogenicity (hypoechoic < 1)
            "texture": smooth_noise(rng, (height, width), 0.03 * scale),
            "rim": rng.uniform(0.0, 0.6),              # halo brightness; 0: no visible rim
            "rim_width": rng.uniform(0.04, 0.12),
            "rim_gaps": smooth_noise(rng, (1, 64), 3.0)[0],
            "posterior": rng.choice([0.75, 1.25, 1.0]),  # shadowing / enhancement / none
        })
    vessel = None
    if rng.random() < 0.6:
        vessel = BlobTrack.random(rng, num_frames, (rng.choice([0.12, 0.88]) * width, rng.uniform(0.5, 0.8) * height),
                                  rng.uniform(0.07, 0.12) * scale, travel=0.03 * scale)
        vessel.harmonic_amplitudes[:] = 0.0  # vessels are round
    attenuation = rng.uniform(0.8, 1.8)
    depth_gain = np.exp(-attenuation * np.linspace(0, 1, height, dtype=np.float32))[:, None]
    gamma = rng.uniform(0.7, 1.0)

    frames = np.zeros((num_frames, height, width, 3), np.uint8)
    masks = np.zeros((num_frames, height, width), np.uint8)
    for t in range(num_frames):
        shift = np.float32([[1, 0, probe_x[t] - margin], [0, 1, probe_y[t] - margin]])
        echo = cv2.warpAffine(tissue, shift, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        lesion = np.zeros((height, width), bool)
        shadow_factor = np.ones((height, width), np.float32)
        surroundings = cv2.GaussianBlur(echo, (0, 0), 0.05 * scale + 0.5)  # interfaces do not cross nodules
        for nodule in nodules:
            rho, theta = nodule["track"].radial_field(t, height, width)
            inside = soft_inside(rho, 0.08)
            interior = nodule["level"] * (1 + 0.35 * nodule["texture"]) * surroundings
            echo = echo * (1 - inside) + np.clip(interior, 0.02, None) * inside
            gaps = np.interp((theta + np.pi) / (2 * np.pi) * 63, np.arange(64), nodule["rim_gaps"])
            rim = np.exp(-((rho - 1.0) / nodule["rim_width"]) ** 2) * np.clip(0.6 + 0.6 * gaps, 0, 1.5)
            echo = echo + nodule["rim"] * rim * 0.6
            below = np.maximum.accumulate(inside, axis=0) - inside
            shadow_factor *= 1 + (nodule["posterior"] - 1) * cv2.GaussianBlur(below, (0, 0), 0.02 * scale + 0.5)
            lesion |= rho < 1.0
        if vessel is not None:
            rho, _ = vessel.radial_field(t, height, width)
            inside = soft_inside(rho, 0.05)
            pulse = 1 + 0.06 * np.sin(2 * np.pi * t / 12.0)
            echo = echo * (1 - inside) + 0.03 * inside + 0.5 * np.exp(-((rho * pulse - 1.05) / 0.06) ** 2)
            shadow_factor *= 1 + 0.3 * (np.maximum.accumulate(inside, axis=0) - inside)
        # Speckle: mostly the tissue's own pattern (moves with the probe), partly decorrelated each frame.
        speckle = 0.75 * cv2.warpAffine(static_speckle, shift, (width, height), borderMode=cv2.BORDER_REFLECT) \
            + 0.25 * _speckle(rng, (height, width), grain)
        amplitude = echo * shadow_factor * speckle * depth_gain
        image = np.log1p(12.0 * np.clip(amplitude, 0, None)) / np.log1p(12.0 * 2.5)
        image = np.clip(image, 0, 1) ** gamma + 0.015 * rng.standard_normal((height, width)).astype(np.float32)
        image = np.clip(image, 0, 1) * field
        if scale >= 128:  # depth ruler ticks on the right edge, as scanners draw them (not a lesion)
            image[int(0.1 * height)::max(height // 8, 1), width - 3:width - 1] = 0.9
        grey = (image * 255).round().astype(np.uint8)
        frames[t] = grey[:, :, None]
        masks[t] = np.where(lesion & field, 255, 0)
    return frames, masks
