"""Synthetic colonoscopy videos with a polyp, for tests and demos.

A static scene larger than the frame (pink mucosa with shading, fine texture, vessels, haustral folds, a dark
lumen and a raised polyp) is filmed by a camera that pans, rotates and zooms smoothly; the light travels with
the camera (vignetting, specular highlights on the folds and the polyp's dome), the image circle is cropped by
the scope's round field of view. The polyp differs from the mucosa by shading, a slightly different colour and
a finer texture rather than by a colour threshold.
"""

from __future__ import annotations

import cv2
import numpy as np

from .synthetic_shapes import BlobTrack, smooth_noise, smooth_path, soft_inside


def _mucosa(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """The scene's colour without the polyp: float32 (H', W', 3) RGB, about 0..1."""
    scale = min(height, width)
    base = np.array([0.86, 0.46, 0.40]) * rng.uniform(0.9, 1.05, 3)
    shading = 1 + 0.18 * smooth_noise(rng, (height, width), 0.12 * scale)
    fine = 0.05 * smooth_noise(rng, (height, width), 0.006 * scale + 0.3)
    image = base[None, None, :] * shading[:, :, None] + fine[:, :, None]
    # Vessels: thin dark-red curves.
    vessels = np.zeros((height, width), np.float32)
    for _ in range(rng.integers(4, 9)):
        points = np.cumsum(rng.normal(0, 0.05 * scale, (12, 2)), axis=0) + rng.uniform(0, 1, 2) * (width, height)
        cv2.polylines(vessels, [points.astype(np.int32)], False, 1.0, max(1, scale // 200), cv2.LINE_AA)
    vessels = cv2.GaussianBlur(vessels, (0, 0), 0.6)
    image *= 1 - 0.35 * vessels[:, :, None] * np.array([0.3, 1.0, 0.9])
    # Haustral folds: bright crests with a shadow on one side, curved around the lumen.
    lumen = rng.uniform(0.2, 0.8, 2) * (width, height)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    radius = np.hypot(xs - lumen[0], ys - lumen[1])
    for ring in rng.uniform(0.15, 0.6, rng.integers(2, 5)) * scale:
        crest = np.exp(-((radius - ring) / (0.02 * scale + 0.5)) ** 2)
        shadow = np.exp(-((radius - ring - 0.035 * scale) / (0.025 * scale + 0.5)) ** 2)
        image = image * (1 + 0.25 * crest - 0.35 * shadow)[:, :, None]
    # The lumen: the far, unlit part of the colon.
    image *= (1 - 0.85 * np.exp(-(radius / (0.12 * scale)) ** 2))[:, :, None]
    return image.astype(np.float32)


def make_endoscopy_video(num_frames: int = 30, height: int = 256, width: int = 256,
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic colonoscopy video and its polyp masks, deterministic by `seed`.

    Returns frames uint8 (T, H, W, 3) RGB and masks uint8 (T, H, W) in {0, 255}.
    """
    rng = np.random.default_rng(seed)
    scale = min(height, width)
    scene_h, scene_w = int(1.6 * height), int(1.6 * width)
    scene = _mucosa(rng, scene_h, scene_w)
    polyp_center = (rng.uniform(0.4, 0.6) * scene_w, rng.uniform(0.4, 0.6) * scene_h)
    polyp = BlobTrack.random(rng, num_frames, polyp_center, rng.uniform(0.1, 0.22) * scale, travel=0.01 * scale)
    polyp_tint = np.array([rng.uniform(0.95, 1.1), rng.uniform(0.85, 1.2), rng.uniform(0.9, 1.25)], np.float32)
    pit_texture = smooth_noise(rng, (scene_h, scene_w), 0.004 * scale + 0.35)
    light = rng.uniform(0, 2 * np.pi)
    highlight_offset, highlight_size = rng.uniform(0.2, 0.5), rng.uniform(0.06, 0.14)  # in polyp radii
    glints = np.zeros((scene_h, scene_w), np.float32)  # static wet spots on the mucosa that reflect the light
    for _ in range(rng.integers(5, 15)):
        center = (int(rng.uniform(0, scene_w)), int(rng.uniform(0, scene_h)))
        axes = (max(1, int(rng.uniform(0.005, 0.02) * scale)), max(1, int(rng.uniform(0.003, 0.01) * scale)))
        cv2.ellipse(glints, center, axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
    glints = cv2.GaussianBlur(glints, (0, 0), 0.8)

    # Camera: looks at the polyp from a wandering position, slowly rotating and zooming.
    pan_x = smooth_path(rng, num_frames, 0.25 * scale)
    pan_y = smooth_path(rng, num_frames, 0.2 * scale)
    rotation = rng.uniform(-30, 30) + np.degrees(smooth_path(rng, num_frames, 0.3))
    zoom = rng.uniform(0.9, 1.2) * np.exp(smooth_path(rng, num_frames, 0.25))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    radial = np.hypot((xs - width / 2) / (width / 2), (ys - height / 2) / (height / 2))
    vignette = (1 - 0.45 * radial ** 2)[:, :, None]
    field_of_view = radial < rng.uniform(1.0, 1.3)  # the scope's round image, corners cut

    frames = np.zeros((num_frames, height, width, 3), np.uint8)
    masks = np.zeros((num_frames, height, width), np.uint8)
    for t in range(num_frames):
        rho, theta = polyp.radial_field(t, scene_h, scene_w)
        inside = soft_inside(rho, 0.1)
        dome = np.sqrt(np.clip(1 - rho ** 2, 0, 1))  # height of a raised polyp, 1 at its top
        slope = np.clip(rho, 0, 1) * np.cos(theta - light)  # which side of the dome faces the light
        shade = (0.85 + 0.25 * dome - 0.3 * slope * (1 - dome)) * (1 + 0.08 * pit_texture)
        polyp_colour = scene * polyp_tint[None, None, :] * shade[:, :, None]
        rim_shadow = np.exp(-((rho - 1.08) / 0.08) ** 2) * np.clip(np.cos(theta - light), 0, 1)
        weight = inside[:, :, None]
        image = scene * (1 - 0.35 * rim_shadow)[:, :, None] * (1 - weight) + polyp_colour * weight
        # The light's reflection on the wet dome: a small spot on the side facing the camera's light.
        spot = rho ** 2 + highlight_offset ** 2 - 2 * rho * highlight_offset * np.cos(theta - light - np.pi)
        highlight = glints + np.clip((highlight_size ** 2 - spot) / highlight_size ** 2 * 4, 0, 1)
        image = image + highlight[:, :, None] * 1.5
        lesion = (rho < 1.0).astype(np.uint8)

        matrix = cv2.getRotationMatrix2D((polyp_center[0] + pan_x[t], polyp_center[1] + pan_y[t]), rotation[t], zoom[t])
        matrix[:, 2] += (width / 2 - polyp_center[0] - pan_x[t], height / 2 - polyp_center[1] - pan_y[t])
        view = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        view_mask = cv2.warpAffine(lesion, matrix, (width, height), flags=cv2.INTER_NEAREST,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        speed = np.hypot(np.gradient(pan_x)[t], np.gradient(pan_y)[t])
        if speed > 0.02 * scale:  # a fast camera move smears the frame
            length = int(min(speed, 0.05 * scale)) | 1
            view = cv2.blur(view, (length, 1))
        view = view * vignette + 0.01 * rng.standard_normal(view.shape).astype(np.float32)
        view = np.clip(view, 0, 1) * field_of_view[:, :, None]
        frames[t] = (view * 255).round().astype(np.uint8)
        masks[t] = np.where(view_mask.astype(bool) & field_of_view, 255, 0)
    return frames, masks
