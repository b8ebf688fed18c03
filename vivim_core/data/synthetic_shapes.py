"""Building blocks of the synthetic videos: smooth random fields and moving, deforming blobs (numpy + OpenCV)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float,
                 sigma_y: float | None = None) -> np.ndarray:
    """Gaussian-filtered white noise rescaled to zero mean, unit std: float32 (H, W)."""
    field = rng.standard_normal(shape).astype(np.float32)
    field = cv2.GaussianBlur(field, (0, 0), sigmaX=max(sigma, 0.3), sigmaY=max(sigma_y or sigma, 0.3),
                             borderType=cv2.BORDER_REFLECT)
    field -= field.mean()
    return field / (field.std() + 1e-6)


def smooth_path(rng: np.random.Generator, num_frames: int, amplitude: float, drift: float = 0.0) -> np.ndarray:
    """A smooth 1-D trajectory offset per frame (two random sinusoids plus a linear drift): float (T,)."""
    t = np.arange(num_frames, dtype=np.float64)
    path = np.zeros(num_frames)
    for _ in range(2):
        period = rng.uniform(20, 60)
        path += amplitude / 2 * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    return path + drift * t


@dataclass
class BlobTrack:
    """A lesion-like blob that moves smoothly and deforms over T frames (all in pixels of the canvas).

    The outline at frame t is an ellipse (semi-axes `radius_x`, `radius_y`, rotation `angle`) whose radius is
    modulated by a few angular harmonics with drifting phases: blobby, never self-intersecting (|sum| < 0.5).
    """

    center_x: np.ndarray  # (T,)
    center_y: np.ndarray  # (T,)
    radius_x: np.ndarray  # (T,)
    radius_y: np.ndarray  # (T,)
    angle: np.ndarray     # (T,) radians
    harmonic_amplitudes: np.ndarray  # (K,)
    harmonic_phases: np.ndarray      # (T, K)

    @classmethod
    def random(cls, rng: np.random.Generator, num_frames: int, center: tuple[float, float], radius: float,
               travel: float, exit_drift: float = 0.0) -> "BlobTrack":
        """A random track around `center` (x, y) with mean radius `radius`, wandering about `travel` pixels;
        `exit_drift` pixels/frame of steady drift (used to make a blob leave the field)."""
        t = np.arange(num_frames, dtype=np.float64)
        direction = rng.uniform(0, 2 * np.pi)
        breathing = 1 + rng.uniform(0.05, 0.2) * np.sin(2 * np.pi * t / rng.uniform(15, 45) + rng.uniform(0, 6.3))
        aspect = rng.uniform(0.6, 1.0)
        num_harmonics = 4
        amplitudes = rng.uniform(0.0, 0.1, num_harmonics) / np.arange(1, num_harmonics + 1) ** 0.5
        phase0 = rng.uniform(0, 2 * np.pi, num_harmonics)
        phase_speed = rng.uniform(-0.08, 0.08, num_harmonics)
        return cls(
            center_x=center[0] + smooth_path(rng, num_frames, travel, exit_drift * np.cos(direction)),
            center_y=center[1] + smooth_path(rng, num_frames, travel * 0.6, exit_drift * np.sin(direction)),
            radius_x=radius * breathing,
            radius_y=radius * aspect * breathing * (1 + 0.05 * np.sin(t / 7.0)),
            angle=rng.uniform(-0.5, 0.5) + smooth_path(rng, num_frames, 0.15),
            harmonic_amplitudes=amplitudes,
            harmonic_phases=phase0[None, :] + phase_speed[None, :] * t[:, None],
        )

    def radial_field(self, frame: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(rho, theta) on an (H, W) grid: rho < 1 inside the outline, rho = 1 on it; float32 each."""
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        dx, dy = xs - self.center_x[frame], ys - self.center_y[frame]
        cos, sin = np.cos(self.angle[frame]), np.sin(self.angle[frame])
        u = (cos * dx + sin * dy) / self.radius_x[frame]
        v = (-sin * dx + cos * dy) / self.radius_y[frame]
        theta = np.arctan2(v, u)
        outline = np.ones_like(theta)
        for k, (amplitude, phase) in enumerate(zip(self.harmonic_amplitudes, self.harmonic_phases[frame]), start=2):
            outline += amplitude * np.cos(k * theta + phase)
        return (np.hypot(u, v) / outline).astype(np.float32), theta.astype(np.float32)


def soft_inside(rho: np.ndarray, softness: float) -> np.ndarray:
    """1 inside, 0 outside, a smooth ramp of relative width `softness` at the outline: float32 like rho."""
    return np.clip((1.0 - rho) / max(softness, 1e-3) + 0.5, 0.0, 1.0).astype(np.float32)
