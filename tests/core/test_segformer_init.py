"""Mapping a Hugging Face SegFormer checkpoint onto Vivim, tested with a randomly initialised SegFormer
written to disk here in HF's format (key names and shapes of `modeling_segformer.py`) -- no download, and no
`transformers` dependency."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from vivim_core import build_model, save_checkpoint
from vivim_core.model.segformer_weights import SegformerWeightsError, load_segformer_weights, map_segformer_key

SMALL = dict(embed_dims=(16, 32, 64, 128), num_heads=(1, 2, 4, 8), transformer_depths=(1, 2, 1, 1),
             temporal_depths=(1, 1, 1, 1), decoder_dim=32, boundary_head_dim=8)


def hf_segformer_state(hidden=(16, 32, 64, 128), depths=(1, 2, 1, 1), sr=(8, 4, 2, 1), mlp=4, decoder=32,
                       labels=150, channels=3, seed=0):
    """A random SegformerForSemanticSegmentation state dict, keys and shapes as Hugging Face writes them."""
    g = torch.Generator().manual_seed(seed)
    state = {}

    def add(prefix, weight_shape, bias=True):
        state[f"{prefix}.weight"] = torch.randn(*weight_shape, generator=g) * 0.1
        if bias:
            state[f"{prefix}.bias"] = torch.randn(weight_shape[0], generator=g) * 0.1

    for i, h in enumerate(hidden):
        c_in, k = (channels, 7) if i == 0 else (hidden[i - 1], 3)
        add(f"segformer.encoder.patch_embeddings.{i}.proj", (h, c_in, k, k))
        add(f"segformer.encoder.patch_embeddings.{i}.layer_norm", (h,))
        for j in range(depths[i]):
            b = f"segformer.encoder.block.{i}.{j}"
            for name in ("query", "key", "value"):
                add(f"{b}.attention.self.{name}", (h, h))
            if sr[i] > 1:
                add(f"{b}.attention.self.sr", (h, h, sr[i], sr[i]))
                add(f"{b}.attention.self.layer_norm", (h,))
            add(f"{b}.attention.output.dense", (h, h))
            add(f"{b}.layer_norm_1", (h,))
            add(f"{b}.layer_norm_2", (h,))
            add(f"{b}.mlp.dense1", (h * mlp, h))
            add(f"{b}.mlp.dwconv.dwconv", (h * mlp, 1, 3, 3))
            add(f"{b}.mlp.dense2", (h, h * mlp))
        add(f"segformer.encoder.layer_norm.{i}", (h,))
        add(f"decode_head.linear_c.{i}.proj", (decoder, h))
    add("decode_head.linear_fuse", (decoder, decoder * len(hidden), 1, 1), bias=False)
    add("decode_head.batch_norm", (decoder,))
    state["decode_head.batch_norm.running_mean"] = torch.randn(decoder, generator=g) * 0.1
    state["decode_head.batch_norm.running_var"] = torch.rand(decoder, generator=g) + 0.5
    state["decode_head.batch_norm.num_batches_tracked"] = torch.tensor(7)
    add("decode_head.classifier", (labels, decoder, 1, 1))
    return state


def write_hf_folder(folder, state, **config):
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    base = {"model_type": "segformer", "hidden_sizes": [16, 32, 64, 128], "depths": [1, 2, 1, 1],
            "num_attention_heads": [1, 2, 4, 8], "sr_ratios": [8, 4, 2, 1], "mlp_ratios": [4, 4, 4, 4],
            "decoder_hidden_size": 32, "num_channels": 3, "patch_sizes": [7, 3, 3, 3], "strides": [4, 2, 2, 2]}
    base.update(config)
    (folder / "config.json").write_text(json.dumps(base))
    return folder


def hf_decode_head(state, features):
    """Hugging Face's SegformerDecodeHead.forward (eval mode), written out from its source."""
    size = features[0].shape[-2:]
    unified = []
    for i, f in enumerate(features):
        n, _, h, w = f.shape
        x = F.linear(f.flatten(2).transpose(1, 2), state[f"decode_head.linear_c.{i}.proj.weight"],
                     state[f"decode_head.linear_c.{i}.proj.bias"])
        x = x.permute(0, 2, 1).reshape(n, -1, h, w)
        unified.append(F.interpolate(x, size=size, mode="bilinear", align_corners=False))
    x = F.conv2d(torch.cat(unified[::-1], dim=1), state["decode_head.linear_fuse.weight"])
    x = F.batch_norm(x, state["decode_head.batch_norm.running_mean"], state["decode_head.batch_norm.running_var"],
                     state["decode_head.batch_norm.weight"], state["decode_head.batch_norm.bias"], False)
    return F.conv2d(F.relu(x), state["decode_head.classifier.weight"], state["decode_head.classifier.bias"])


def test_key_mapping_follows_hugging_face_names():
    assert map_segformer_key("segformer.encoder.block.2.1.attention.self.layer_norm.weight") == \
        "stages.2.blocks.1.attention.sr_norm.weight"
    assert map_segformer_key("segformer.encoder.block.0.0.attention.output.dense.bias") == \
        "stages.0.blocks.0.attention.proj.bias"
    assert map_segformer_key("segformer.encoder.block.0.1.mlp.dwconv.dwconv.weight") == \
        "stages.0.blocks.1.mlp.dwconv.weight"
    assert map_segformer_key("segformer.encoder.patch_embeddings.3.layer_norm.bias") == \
        "stages.3.patch_embed.layer_norm.bias"
    assert map_segformer_key("segformer.encoder.layer_norm.1.weight") == "stages.1.layer_norm.weight"
    assert map_segformer_key("decode_head.linear_c.2.proj.weight") == "decoder.linear_c.2.weight"
    assert map_segformer_key("encoder.block.0.0.layer_norm_1.weight") == "stages.0.blocks.0.layer_norm_1.weight"
    assert map_segformer_key("classifier.weight") is None  # ImageNet classification head


def test_loads_encoder_and_decoder_skips_a_150_class_classifier(tmp_path):
    state = hf_segformer_state(labels=150)
    folder = write_hf_folder(tmp_path / "segformer-ade", state)
    model = build_model("vivim-tiny", **SMALL)
    untouched = {k: v.clone() for k, v in model.state_dict().items() if "temporal" in k or "boundary_head" in k}
    report = load_segformer_weights(model, folder)
    ours = model.state_dict()
    assert torch.equal(ours["stages.1.blocks.1.attention.sr_norm.weight"],
                       state["segformer.encoder.block.1.1.attention.self.layer_norm.weight"])
    assert torch.equal(ours["stages.3.layer_norm.bias"], state["segformer.encoder.layer_norm.3.bias"])
    assert torch.equal(ours["decoder.linear_fuse.weight"], state["decode_head.linear_fuse.weight"])
    expected = len([k for k in state if not k.startswith("decode_head.classifier")])
    assert len(report.loaded) == expected
    assert set(report.skipped) == {"decode_head.classifier.weight", "decode_head.classifier.bias"}
    assert "150 classes" in report.summary()
    assert all(torch.equal(v, ours[k]) for k, v in untouched.items())
    assert set(report.not_in_checkpoint) == set(untouched) | {"decoder.classifier.weight", "decoder.classifier.bias"}


def test_single_file_with_one_class_loads_the_classifier_and_decodes_like_hugging_face(tmp_path):
    state = hf_segformer_state(labels=1, seed=1)
    path = tmp_path / "segformer.safetensors"
    save_file(state, str(path))
    model = build_model("vivim-tiny", **SMALL).eval()
    report = load_segformer_weights(model, path)
    assert not report.skipped and "decoder.classifier.weight" in report.loaded
    features = [torch.randn(2, c, 16 // 2**i, 16 // 2**i) for i, c in enumerate(SMALL["embed_dims"])]
    with torch.no_grad():
        ours = model.decoder(features)
    assert torch.allclose(ours, hf_decode_head(state, features), atol=1e-4)


def test_incompatible_checkpoints_fail_with_a_clear_message(tmp_path):
    wide = hf_segformer_state(hidden=(32, 64, 96, 128))
    save_file(wide, str(tmp_path / "wide.safetensors"))
    model = build_model("vivim-tiny", **SMALL)
    with pytest.raises(SegformerWeightsError, match=r"wide.safetensors.*does not fit .*widths"):
        load_segformer_weights(model, tmp_path / "wide.safetensors")
    b1_config = write_hf_folder(tmp_path / "b1", hf_segformer_state(), hidden_sizes=[64, 128, 320, 512],
                                depths=[2, 2, 2, 2], num_attention_heads=[1, 2, 5, 8])
    with pytest.raises(SegformerWeightsError, match="use --variant vivim-b1"):
        load_segformer_weights(build_model("vivim-tiny"), b1_config)
    deep = hf_segformer_state(depths=(1, 3, 1, 1))
    save_file(deep, str(tmp_path / "deep.safetensors"))
    with pytest.raises(SegformerWeightsError, match="depths differ"):
        load_segformer_weights(model, tmp_path / "deep.safetensors")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x02")
    with pytest.raises(SegformerWeightsError, match="pickles are never loaded"):
        load_segformer_weights(model, pickled)
    vivim = save_checkpoint(build_model("vivim-tiny", **SMALL), tmp_path / "vivim.safetensors")
    with pytest.raises(SegformerWeightsError, match="is a Vivim checkpoint"):
        load_segformer_weights(model, vivim)
    with pytest.raises(SegformerWeightsError, match="not found"):
        load_segformer_weights(model, tmp_path / "nowhere")


def test_train_initialises_from_segformer_and_records_it(tmp_path):
    from vivim_core.cli import main
    from vivim_core.data.synthetic import write_vtus_dataset

    folder = write_hf_folder(tmp_path / "mit-b0-ade", hf_segformer_state(hidden=(32, 64, 160, 256), depths=(2, 2, 2, 2),
                                                                           decoder=256),
                             hidden_sizes=[32, 64, 160, 256], depths=[2, 2, 2, 2], num_attention_heads=[1, 2, 5, 8],
                             decoder_hidden_size=256)
    data = write_vtus_dataset(tmp_path / "data", num_videos=1, frames_per_video=4, size=(64, 64))
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--variant", "vivim-tiny", "--out", str(run), "--init-segformer",
                 str(folder), "--steps", "1", "--batch-size", "1", "--clip-length", "2", "--size", "64",
                 "--num-workers", "0", "--val-split", "none", "--no-progress"]) == 0
    record = json.loads((run / "config.json").read_text())["init_segformer"]
    assert record["loaded"] > 100 and "decode_head.classifier.weight" in record["skipped"]
