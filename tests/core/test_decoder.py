"""The decoder's composed-weights evaluation equals SegFormer's concatenate-then-fuse head."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vivim_core.model.decoder import MLPDecoder


def segformer_head(decoder: MLPDecoder, features):
    """SegFormer's all-MLP head written the textbook way."""
    size = features[0].shape[-2:]
    maps = []
    for feature, linear in zip(features, decoder.linear_c):
        n, _, h, w = feature.shape
        x = linear(feature.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(n, -1, h, w)
        maps.append(F.interpolate(x, size=size, mode="bilinear", align_corners=False))
    x = decoder.linear_fuse(torch.cat(maps[::-1], dim=1))
    return decoder.classifier(F.relu(decoder.batch_norm(x)))


def test_composed_decoder_equals_concatenate_then_fuse():
    decoder = MLPDecoder((8, 16, 24, 32), dim=12, num_classes=2, dropout=0.0).eval()
    with torch.no_grad():
        decoder.batch_norm.running_mean.normal_()
        decoder.batch_norm.running_var.uniform_(0.5, 2.0)
    features = [torch.randn(3, c, 16 // 2**i, 20 // 2**i) for i, c in enumerate((8, 16, 24, 32))]
    with torch.no_grad():
        assert torch.allclose(decoder(features), segformer_head(decoder, features), atol=1e-5)
