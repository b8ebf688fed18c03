"""Training losses: the structure loss (L_seg), the Sobel boundary target and boundary BCE, the affine
boundary constraint with its frozen, project-trained prior, and their weighted sum.

    from vivim_core.losses import VivimLoss, LossWeights, load_affine_prior
    criterion = VivimLoss(LossWeights(seg=1.0, affine=0.3, boundary=0.3), prior=load_affine_prior())
    terms = criterion(out.mask_logits, out.boundary_logits, masks)    # all (B, T, 1, H, W)
    terms.total.backward()
"""

from .affine import AffineBoundaryLoss, to_patches
from .affine_prior import (DEFAULT_PRIOR_PATH, AffinePrior, AffinePriorError, identity_affine, load_affine_prior,
                           read_affine_prior_info, save_affine_prior)
from .boundary import boundary_bce, sobel_boundary
from .segmentation import boundary_weight, structure_loss
from .total import LossTerms, LossWeights, VivimLoss

__all__ = [
    "AffineBoundaryLoss", "AffinePrior", "AffinePriorError", "DEFAULT_PRIOR_PATH", "LossTerms", "LossWeights",
    "VivimLoss", "boundary_bce", "boundary_weight", "identity_affine", "load_affine_prior",
    "read_affine_prior_info", "save_affine_prior", "sobel_boundary", "structure_loss", "to_patches",
]
