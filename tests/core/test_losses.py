"""Losses: structure loss against the reference formula, Sobel boundary target, and the boundary terms'
gradients reaching (and changing) the model's weights -- the reference code's boundary losses did not."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vivim_core import build_model
from vivim_core.losses import (AffineBoundaryLoss, AffinePrior, LossWeights, VivimLoss, boundary_bce,
                               load_affine_prior, sobel_boundary, structure_loss, to_patches)


def reference_structure_loss(pred, mask):
    """PraNet's structure_loss, verbatim in behaviour (per-image mean of weighted BCE + weighted IoU)."""
    weit = 1 + 5 * torch.abs(F.avg_pool2d(mask, kernel_size=31, stride=1, padding=15) - mask)
    wbce = F.binary_cross_entropy_with_logits(pred, mask, reduction="none")
    wbce = (weit * wbce).sum(dim=(2, 3)) / weit.sum(dim=(2, 3))
    pred = torch.sigmoid(pred)
    inter = ((pred * mask) * weit).sum(dim=(2, 3))
    union = ((pred + mask) * weit).sum(dim=(2, 3))
    wiou = 1 - (inter + 1) / (union - inter + 1)
    return (wbce + wiou).mean()


def disc_masks(batch=2, frames=3, size=64, radius=14):
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    masks = torch.zeros(batch, frames, 1, size, size)
    for b in range(batch):
        for t in range(frames):
            cy, cx = 28 + 2 * t + b, 30 + 3 * t
            masks[b, t, 0] = (((y - cy) ** 2 + (x - cx) ** 2) < radius**2).float()
    return masks


def test_structure_loss_matches_the_reference_formula_and_folds_time():
    masks = disc_masks()
    logits = torch.randn_like(masks) * 3
    expected = reference_structure_loss(logits.reshape(-1, 1, 64, 64), masks.reshape(-1, 1, 64, 64))
    assert torch.allclose(structure_loss(logits, masks), expected, atol=1e-6)
    perfect = (masks * 2 - 1) * 30
    assert structure_loss(perfect, masks) < 0.05 < structure_loss(-perfect, masks)


def test_sobel_boundary_is_a_two_pixel_band_on_the_contour_and_not_on_the_frame_border():
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:10, 0:8] = 1  # touches the left border
    edges = sobel_boundary(mask)[0, 0]
    assert set(edges.unique().tolist()) == {0.0, 1.0}
    assert edges[6, 7] == 1 and edges[6, 8] == 1  # both sides of the right contour
    assert edges[6, 5] == 0 and edges[6, 10] == 0  # inside and outside, away from it
    assert edges[6, 0] == 0  # the frame border is not a boundary
    assert sobel_boundary(torch.zeros(2, 3, 1, 8, 8)).sum() == 0
    assert sobel_boundary(disc_masks()).shape == (2, 3, 1, 64, 64)


def test_boundary_bce_is_plain_bce_and_to_patches_tiles_in_order():
    logits, target = torch.randn(2, 1, 8, 8), (torch.rand(2, 1, 8, 8) > 0.8).float()
    assert torch.allclose(boundary_bce(logits, target), F.binary_cross_entropy_with_logits(logits, target))
    maps = torch.arange(2 * 32 * 32, dtype=torch.float32).reshape(2, 1, 32, 32)
    patches = to_patches(maps, 16)
    assert patches.shape == (8, 16, 16)
    assert torch.equal(patches[1], maps[0, 0, :16, 16:]) and torch.equal(patches[6], maps[1, 0, 16:, :16])


def test_affine_loss_is_zero_without_edges_but_keeps_the_graph():
    prior = load_affine_prior()
    loss_fn = AffineBoundaryLoss(prior)
    prob = torch.rand(1, 1, 32, 32, requires_grad=True)
    loss = loss_fn(prob, torch.zeros(1, 1, 32, 32))
    loss.backward()
    assert float(loss.detach()) == 0 and prob.grad is not None


def test_the_frozen_prior_scores_aligned_boundaries_better_than_shifted_ones():
    loss_fn = AffineBoundaryLoss(load_affine_prior())
    target = sobel_boundary(disc_masks(1, 1))
    aligned = loss_fn(target, target)
    shifted = loss_fn(torch.roll(target, shifts=(3, -3), dims=(-2, -1)), target)
    assert aligned < 0.7 * shifted
    assert not any(p.requires_grad for p in loss_fn.prior.parameters())
    loss_fn.train()
    assert not loss_fn.prior.training


def _model_and_batch():
    torch.manual_seed(0)
    model = build_model("vivim-tiny").train()
    clip = torch.randn(1, 3, 3, 64, 64)
    return model, clip, disc_masks(1, 3)


@pytest.mark.parametrize("term", ["affine", "boundary"])
def test_each_boundary_term_alone_reaches_the_weights_and_changes_them(term):
    """The reference released training with these terms off, and its affine term had no gradient (a softmax
    over one channel). Ours: each term alone gives non-zero gradients to the boundary head and the shared
    encoder stage, and one Adam step moves those weights."""
    model, clip, masks = _model_and_batch()
    weights = LossWeights(seg=0.0, affine=1.0 if term == "affine" else 0.0, boundary=1.0 if term == "boundary" else 0.0)
    criterion = VivimLoss(weights, prior=load_affine_prior() if term == "affine" else None)
    out = model(clip)
    terms = criterion(out.mask_logits, out.boundary_logits, masks)
    assert float(getattr(terms, term)) > 0
    terms.total.backward()
    head, encoder = model.boundary_head.layers[-1].weight, model.stages[0].patch_embed.proj.weight
    assert head.grad is not None and head.grad.abs().sum() > 0
    assert encoder.grad is not None and encoder.grad.abs().sum() > 0
    mask_head = model.decoder.classifier.weight.grad
    assert mask_head is None or mask_head.abs().sum() == 0  # the mask head is not what these terms train
    before = {"head": head.detach().clone(), "encoder": encoder.detach().clone()}
    torch.optim.Adam(model.parameters(), lr=1e-3).step()
    assert not torch.equal(before["head"], head) and not torch.equal(before["encoder"], encoder)


def test_total_loss_weights_and_the_c3_switch():
    model, clip, masks = _model_and_batch()
    out = model(clip)
    full = VivimLoss(LossWeights(), prior=load_affine_prior())(out.mask_logits, out.boundary_logits, masks)
    expected = full.seg + 0.3 * full.affine + 0.3 * full.boundary
    assert torch.allclose(full.total.detach(), expected, atol=1e-5)
    assert set(full.as_floats()) == {"loss", "seg", "affine", "boundary"}
    seg_only = VivimLoss(LossWeights(), prior=None, boundary_loss=False)(out.mask_logits, out.boundary_logits, masks)
    assert float(seg_only.affine) == 0 and float(seg_only.boundary) == 0
    seg_only.total.backward()
    assert model.boundary_head.layers[-1].weight.grad is None
    with pytest.raises(ValueError, match="affine prior"):
        VivimLoss(LossWeights(), prior=None)


def test_an_untrained_prior_answers_identity():
    prior = AffinePrior()
    theta = prior(torch.rand(3, 16, 16), torch.rand(3, 16, 16))
    assert torch.allclose(theta, torch.tensor([[1.0, 0, 0], [0, 1, 0]]).expand(3, 2, 3))
