"""Pre-training the affine prior on synthetic edge patches under random affine warps (InverseForm's recipe).

A pair is (reference, target, theta): the reference is the Sobel boundary of a random shape inside a P x P
patch (blobs with wavy contours, nearly straight edges, pairs of blobs); the target is the Sobel boundary of
the same shape warped by theta (the shape function is evaluated at the transformed pixel centres, so the
warp is exact and the edge keeps its 2-pixel width), then made to look like a network's boundary output:
blurred, sometimes thickened, dimmed, on a background level, with noise. A fraction of pairs are aligned
(theta = identity) with the same nuisances, so the prior learns that appearance alone is not a transform.
The MLP regresses theta with a mean squared error.

    prior, report = train_affine_prior(steps=3000, seed=0, progress=callback)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .affine_prior import AffinePrior, identity_affine
from .boundary import sobel_kernels


@dataclass(frozen=True)
class WarpRanges:
    """Ranges of the random affine warps (normalised patch coordinates: 1.0 = half a patch)."""

    max_rotation_deg: float = 25.0
    max_log_scale: float = 0.2
    max_shear: float = 0.15
    max_translation: float = 0.4
    identity_fraction: float = 0.2


def sample_affines(n: int, ranges: WarpRanges, generator: torch.Generator) -> Tensor:
    """(n, 2, 3) random affine transforms near the identity; a fraction are exactly the identity."""
    def uniform(scale: float, *shape: int) -> Tensor:
        return (torch.rand(n, *shape, generator=generator) * 2 - 1) * scale

    angle = uniform(math.radians(ranges.max_rotation_deg))
    scale = uniform(ranges.max_log_scale, 2).exp()
    shear = uniform(ranges.max_shear)
    cos, sin = angle.cos(), angle.sin()
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shear_m = torch.eye(2).repeat(n, 1, 1)
    shear_m[:, 0, 1] = shear
    linear = rotation @ shear_m @ torch.diag_embed(scale)
    theta = torch.cat([linear, uniform(ranges.max_translation, 2, 1)], dim=2)
    aligned = torch.rand(n, generator=generator) < ranges.identity_fraction
    theta[aligned] = identity_affine(int(aligned.sum()))
    return theta


def _pixel_grid(patch_size: int, margin: int) -> Tensor:
    """Pixel centres of a (P + 2m) square around the patch, in normalised patch coordinates: (S*S, 2) as (x, y)."""
    index = torch.arange(-margin, patch_size + margin, dtype=torch.float32)
    coords = (2 * index + 1) / patch_size - 1
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    return torch.stack([x.flatten(), y.flatten()], dim=1)


def _shape_field(points: Tensor, params: dict[str, Tensor]) -> Tensor:
    """Signed field of random star-shaped blobs at points (n, K, 2): < 0 inside. Returns (n, K)."""
    field = None
    for blob in range(params["centre"].shape[1]):
        offset = points - params["centre"][:, blob, None, :]
        radius = offset.norm(dim=-1)
        angle = torch.atan2(offset[..., 1], offset[..., 0])
        harmonics = torch.arange(2, 2 + params["amplitude"].shape[2], dtype=points.dtype)
        wave = (params["amplitude"][:, blob, None, :] * torch.cos(harmonics * angle[..., None]
                                                                   + params["phase"][:, blob, None, :])).sum(-1)
        value = radius - params["radius"][:, blob, None] * (1 + wave)
        present = params["present"][:, blob, None]
        value = torch.where(present, value, torch.full_like(value, 1e3))
        field = value if field is None else torch.minimum(field, value)
    return field


def _random_shapes(n: int, generator: torch.Generator, blobs: int = 2, harmonics: int = 3) -> dict[str, Tensor]:
    """Blob parameters whose contour passes near the patch centre (distance <= ~0.6)."""
    direction = torch.rand(n, blobs, generator=generator) * 2 * math.pi
    distance = 0.15 + torch.rand(n, blobs, generator=generator).pow(2) * 3.0  # far centres: nearly straight edges
    centre = torch.stack([direction.cos(), direction.sin()], -1) * distance[..., None]
    radius = (distance + (torch.rand(n, blobs, generator=generator) * 2 - 1) * 0.6).clamp(min=0.15)
    amplitude = (torch.rand(n, blobs, harmonics, generator=generator) * 2 - 1) * 0.12
    phase = torch.rand(n, blobs, harmonics, generator=generator) * 2 * math.pi
    present = torch.ones(n, blobs, dtype=torch.bool)
    present[:, 1:] = torch.rand(n, blobs - 1, generator=generator) < 0.25
    return {"centre": centre, "radius": radius, "amplitude": amplitude, "phase": phase, "present": present}


def _edges(inside: Tensor, patch_size: int) -> Tensor:
    """Sobel boundary of masks (n, 1, P+2, P+2) -> (n, P, P) (valid conv: the margin gives true neighbours)."""
    gradient = F.conv2d(inside.float(), sobel_kernels())
    return (gradient.abs().sum(1) > 0).float()


def _network_like(edges: Tensor, generator: torch.Generator) -> Tensor:
    """Nuisances of a predicted boundary map: blur, thickening, dimming, background, noise. (n, P, P) -> same."""
    n = edges.shape[0]
    x = edges[:, None]
    thicken = torch.rand(n, generator=generator) < 0.3
    if thicken.any():
        x = torch.where(thicken[:, None, None, None], F.max_pool2d(x, 3, 1, 1), x)
    sigma = torch.rand(n, generator=generator) * 1.5 + 1e-3
    offsets = torch.arange(-3, 4, dtype=torch.float32)
    kernel_1d = torch.exp(-offsets[None] ** 2 / (2 * sigma[:, None] ** 2))
    kernel_1d = kernel_1d / kernel_1d.sum(1, keepdim=True)
    kernel = (kernel_1d[:, :, None] * kernel_1d[:, None, :])[:, None]  # (n, 1, 7, 7)
    x = F.conv2d(x.transpose(0, 1), kernel, padding=3, groups=n).transpose(0, 1)
    x = x / x.amax(dim=(2, 3), keepdim=True).clamp(min=1e-6)
    amplitude = 0.4 + 0.6 * torch.rand(n, 1, 1, 1, generator=generator)
    background = torch.rand(n, 1, 1, 1, generator=generator) * 0.3 * (torch.rand(n, 1, 1, 1, generator=generator) < 0.5)
    noise = torch.randn(x.shape, generator=generator) * torch.rand(n, 1, 1, 1, generator=generator) * 0.08
    return (background + (amplitude - background) * x + noise).clamp(0, 1)[:, 0]


def make_patch_pairs(n: int, patch_size: int = 16, ranges: WarpRanges = WarpRanges(),
                     generator: torch.Generator | None = None,
                     min_edge_pixels: int = 4) -> tuple[Tensor, Tensor, Tensor]:
    """n training pairs: reference (n, P, P) {0, 1}, target (n, P, P) in [0, 1], theta (n, 2, 3).

    Every reference holds at least `min_edge_pixels` boundary pixels (the loss skips emptier patches too).
    """
    generator = generator or torch.Generator().manual_seed(0)
    grid = _pixel_grid(patch_size, margin=1)
    side = patch_size + 2
    refs, targets, thetas, have = [], [], [], 0
    while have < n:
        m = max(2 * (n - have), 64)
        shapes = _random_shapes(m, generator)
        theta = sample_affines(m, ranges, generator)
        warped_points = grid[None] @ theta[:, :, :2].transpose(1, 2) + theta[:, None, :, 2]
        ref = _edges((_shape_field(grid.expand(m, -1, -1), shapes) < 0).reshape(m, 1, side, side), patch_size)
        tgt = _edges((_shape_field(warped_points, shapes) < 0).reshape(m, 1, side, side), patch_size)
        ok = ref.sum(dim=(1, 2)) >= min_edge_pixels
        refs.append(ref[ok]), targets.append(_network_like(tgt[ok], generator)), thetas.append(theta[ok])
        have += int(ok.sum())
    return torch.cat(refs)[:n], torch.cat(targets)[:n], torch.cat(thetas)[:n]


@dataclass(frozen=True)
class PriorTrainConfig:
    patch_size: int = 16
    hidden_dims: tuple[int, ...] = (512, 256)
    steps: int = 3000
    batch_size: int = 512
    lr: float = 1e-3
    seed: int = 0
    validation_pairs: int = 4096
    ranges: WarpRanges = WarpRanges()


def frobenius_errors(prior: AffinePrior, reference: Tensor, target: Tensor, theta: Tensor) -> dict[str, float]:
    """Mean ||theta_hat - theta||_F of the prior, the same for always answering identity, and on aligned pairs."""
    with torch.no_grad():
        predicted = prior(reference, target)
    identity = identity_affine(len(theta))
    error = (predicted - theta).flatten(1).norm(dim=1)
    aligned = (theta - identity).flatten(1).norm(dim=1) < 1e-6
    return {"mean_frobenius_error": float(error.mean()),
            "identity_baseline_error": float((identity - theta).flatten(1).norm(dim=1).mean()),
            "aligned_pairs_distance_from_identity": float(error[aligned].mean()) if aligned.any() else float("nan")}


def train_affine_prior(config: PriorTrainConfig = PriorTrainConfig(),
                       progress: Callable[[int, int, float], None] | None = None) -> tuple[AffinePrior, dict]:
    """Train a prior from scratch on the CPU (fresh synthetic pairs every step). Deterministic by seed.

    progress(step, total_steps, loss) is called every 50 steps. Returns (prior, report) where the report
    (config, validation errors, seconds) is what `save_affine_prior` stores as the training record.
    """
    torch.manual_seed(config.seed)
    prior = AffinePrior(config.patch_size, config.hidden_dims)
    validation = make_patch_pairs(config.validation_pairs, config.patch_size, config.ranges,
                                  torch.Generator().manual_seed(10_000 + config.seed))
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(prior.parameters(), lr=config.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=config.steps, pct_start=0.05)
    start, running = time.perf_counter(), None
    prior.train()
    for step in range(1, config.steps + 1):
        reference, target, theta = make_patch_pairs(config.batch_size, config.patch_size, config.ranges, generator)
        loss = F.mse_loss(prior(reference, target), theta)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        value = float(loss.detach())
        running = value if running is None else 0.98 * running + 0.02 * value
        if progress is not None and (step % 50 == 0 or step == config.steps):
            progress(step, config.steps, running)
    prior.eval().requires_grad_(False)
    report = {"config": asdict(config), "validation": frobenius_errors(prior, *validation),
              "seconds": round(time.perf_counter() - start, 1), "torch_threads": torch.get_num_threads()}
    return prior, report
