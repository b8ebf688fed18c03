"""Initialise Vivim from a local Hugging Face SegFormer checkpoint (`--init-segformer PATH`).

    report = load_segformer_weights(model, "downloads/segformer-b3-finetuned-ade-512-512")
    print(report.summary())     # what was loaded, skipped (and why), and left at its initialisation

PATH is a Hugging Face folder (`model.safetensors` or a sharded `model.safetensors.index.json`, with
`config.json`) or a single `.safetensors` file. Only safetensors are read: a `pytorch_model.bin` is a pickle
and is refused. Key mapping (HF `modeling_segformer.py` -> ours; a leading `segformer.` is dropped):

    encoder.patch_embeddings.{i}.proj / .layer_norm     -> stages.{i}.patch_embed.proj / .layer_norm
    encoder.block.{i}.{j}.layer_norm_1 / layer_norm_2   -> stages.{i}.blocks.{j}.layer_norm_1 / layer_norm_2
    encoder.block.{i}.{j}.attention.self.query/key/value/sr  -> stages.{i}.blocks.{j}.attention.query/key/value/sr
    encoder.block.{i}.{j}.attention.self.layer_norm     -> stages.{i}.blocks.{j}.attention.sr_norm
    encoder.block.{i}.{j}.attention.output.dense        -> stages.{i}.blocks.{j}.attention.proj
    encoder.block.{i}.{j}.mlp.dense1 / dense2 / dwconv.dwconv -> stages.{i}.blocks.{j}.mlp.dense1 / dense2 / dwconv
    encoder.layer_norm.{i}                              -> stages.{i}.layer_norm
    decode_head.linear_c.{i}.proj / linear_fuse / batch_norm / classifier -> decoder.linear_c.{i} / ...

The encoder must match the variant exactly (widths, depths, heads, reduction ratios): otherwise a
`SegformerWeightsError` says which variant would fit. The decoder loads when its width matches (else it is
skipped as a whole); the classifier loads only when the class count matches (ADE20K has 150, we have 1).
The Temporal Mamba blocks and the boundary head have no SegFormer counterpart and keep their initialisation.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import VivimError
from ..file_safety import UnsafePathError, confined, open_regular

_KEY_RULES = [
    (r"encoder\.patch_embeddings\.(\d+)\.(proj|layer_norm)\.", r"stages.\1.patch_embed.\2."),
    (r"encoder\.block\.(\d+)\.(\d+)\.(layer_norm_1|layer_norm_2)\.", r"stages.\1.blocks.\2.\3."),
    (r"encoder\.block\.(\d+)\.(\d+)\.attention\.self\.(query|key|value|sr)\.", r"stages.\1.blocks.\2.attention.\3."),
    (r"encoder\.block\.(\d+)\.(\d+)\.attention\.self\.layer_norm\.", r"stages.\1.blocks.\2.attention.sr_norm."),
    (r"encoder\.block\.(\d+)\.(\d+)\.attention\.output\.dense\.", r"stages.\1.blocks.\2.attention.proj."),
    (r"encoder\.block\.(\d+)\.(\d+)\.mlp\.(dense1|dense2)\.", r"stages.\1.blocks.\2.mlp.\3."),
    (r"encoder\.block\.(\d+)\.(\d+)\.mlp\.dwconv\.dwconv\.", r"stages.\1.blocks.\2.mlp.dwconv."),
    (r"encoder\.layer_norm\.(\d+)\.", r"stages.\1.layer_norm."),
    (r"decode_head\.linear_c\.(\d+)\.proj\.", r"decoder.linear_c.\1."),
    (r"decode_head\.(linear_fuse|batch_norm|classifier)\.", r"decoder.\1."),
]
_COMPILED = [(re.compile("^" + pattern), replacement) for pattern, replacement in _KEY_RULES]
# HF config.json field -> our ModelConfig field; a mismatch means the encoder cannot load
_CONFIG_FIELDS = {"hidden_sizes": "embed_dims", "depths": "transformer_depths", "num_attention_heads": "num_heads",
                  "sr_ratios": "sequence_reduction_ratios", "mlp_ratios": "mlp_ratios"}


class SegformerWeightsError(VivimError, ValueError):
    """A SegFormer checkpoint that cannot initialise this model (the message names the file and the fix)."""


@dataclass
class SegformerLoadReport:
    """What `load_segformer_weights` did. Keys are ours (`stages.0.patch_embed.proj.weight`, ...)."""

    source: Path
    loaded: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # checkpoint key -> reason
    not_in_checkpoint: list[str] = field(default_factory=list)  # our keys left at their initialisation

    def summary(self) -> str:
        lines = [f"SegFormer weights from {self.source}: {len(self.loaded)} tensors loaded, "
                 f"{len(self.skipped)} skipped, {len(self.not_in_checkpoint)} of the model's tensors not in the "
                 f"checkpoint (Temporal Mamba blocks, boundary head{', decoder' if self._decoder_missing() else ''})"]
        reasons: dict[str, list[str]] = {}
        for key, reason in self.skipped.items():
            reasons.setdefault(reason, []).append(key)
        for reason, keys in reasons.items():
            lines.append(f"  skipped {len(keys)} ({reason}): {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}")
        return "\n".join(lines)

    def _decoder_missing(self) -> bool:
        return any(k.startswith("decoder.") for k in self.not_in_checkpoint)


def map_segformer_key(key: str) -> str | None:
    """Our name for a Hugging Face SegFormer key, or None when it has no counterpart."""
    key = key[len("segformer."):] if key.startswith("segformer.") else key
    for pattern, replacement in _COMPILED:
        if pattern.match(key):
            return pattern.sub(replacement, key, count=1)
    return None


def _small_json(path: Path) -> dict:
    """A JSON object from a small file of the checkpoint's folder (config.json, the shard index), checked."""
    from ..checkpoint_header import loads_json

    try:
        with open_regular(path, "SegFormer file", max_bytes=16 * 2**20) as f:
            data = f.read()
    except UnsafePathError as exc:
        raise SegformerWeightsError(str(exc)) from None
    value = loads_json(data, str(path), error=SegformerWeightsError)
    if not isinstance(value, dict):
        raise SegformerWeightsError(f"{path}: not a JSON object")
    return value


def _safetensors_files(path: Path) -> list[Path]:
    if path.is_file():
        if path.suffix != ".safetensors":
            raise SegformerWeightsError(
                f"{path}: not a .safetensors file. Vivim reads SegFormer weights only from safetensors (a "
                f"pytorch_model.bin is a pickle and is never loaded); download the model's model.safetensors")
        return [path]
    if path.is_dir():
        index = path / "model.safetensors.index.json"
        if index.is_file():
            weight_map = _small_json(index).get("weight_map", {})
            if not isinstance(weight_map, dict) or not all(isinstance(n, str) for n in weight_map.values()):
                raise SegformerWeightsError(f"{index}: its weight_map must map tensor names to file names")
            try:  # names found in a file: each must be a plain file name inside the folder
                return sorted({confined(path, name) for name in weight_map.values()})
            except UnsafePathError as exc:
                raise SegformerWeightsError(f"{index}: {exc}") from None
        if (path / "model.safetensors").is_file():
            return [path / "model.safetensors"]
        found = sorted(path.glob("*.safetensors"))
        if len(found) == 1:
            return found
        pickles = [p.name for p in path.glob("*.bin")] + [p.name for p in path.glob("*.pt*")]
        hint = (f" It holds {', '.join(pickles)}: pickles are never loaded; get the model.safetensors of the same "
                f"model (Hugging Face serves both)." if pickles else "")
        raise SegformerWeightsError(f"{path}: no model.safetensors in this folder (found {len(found)} .safetensors "
                                    f"files).{hint}")
    raise SegformerWeightsError(f"{path}: SegFormer checkpoint not found (give a Hugging Face model folder or a "
                                f".safetensors file)")


def read_segformer_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict | None]:
    """(state dict with the checkpoint's own keys, config.json as a dict or None) of a local HF checkpoint."""
    from ..checkpoint_header import read_safetensors_header
    from ..engine.checkpoint import read_tensors

    path = Path(path)
    state: dict[str, Tensor] = {}
    for file in _safetensors_files(path):
        header = read_safetensors_header(file, "SegFormer checkpoint", error=SegformerWeightsError)
        if header.metadata.get("format") == "vivim-checkpoint":
            raise SegformerWeightsError(f"{file} is a Vivim checkpoint, not a SegFormer one: continue from it "
                                        f"with `vivim-core finetune --checkpoint {file}`")
        state.update(read_tensors(header, "SegFormer checkpoint", SegformerWeightsError))
    config_path = (path if path.is_dir() else path.parent) / "config.json"
    config = None
    if config_path.is_file():
        config = _small_json(config_path)
        if not path.is_dir() and config.get("model_type") not in (None, "segformer"):
            config = None  # a loose .safetensors file beside some other model's config.json
    return state, config


def _check_config(path: Path, hf_config: dict, model: nn.Module) -> None:
    """Compare config.json with the model's config; raise with a hint at the variant that would fit."""
    from ..config import VARIANTS

    ours = model.config
    if hf_config.get("model_type") not in (None, "segformer"):
        raise SegformerWeightsError(f"{path}: config.json describes a {hf_config.get('model_type')!r} model, not a "
                                    f"SegFormer")
    for hf_name in _CONFIG_FIELDS:
        value = hf_config.get(hf_name, [])
        if not isinstance(value, list) or not all(type(v) is int for v in value):
            raise SegformerWeightsError(f"{path}: config.json field {hf_name} {str(value)[:60]} is not a list of "
                                        f"integers; the file was altered or is not a SegFormer config")
    differences = []
    for hf_name, our_name in _CONFIG_FIELDS.items():
        if hf_name in hf_config and tuple(hf_config[hf_name]) != tuple(getattr(ours, our_name)):
            differences.append(f"{hf_name} {tuple(hf_config[hf_name])} vs our {our_name} {getattr(ours, our_name)}")
    if differences:
        fits = [name for name, v in VARIANTS.items()
                if all(tuple(hf_config.get(h, getattr(v.config, o))) == tuple(getattr(v.config, o))
                       for h, o in _CONFIG_FIELDS.items())]
        hint = (f"use --variant {' or '.join(fits)}" if fits else
                "no built-in variant has this encoder; pick the SegFormer size that matches the variant "
                "(vivim-tiny: MiT-B0, vivim-b1: MiT-B1, vivim-b3: MiT-B3)")
        raise SegformerWeightsError(f"{path}: this SegFormer does not fit {ours.variant}: {'; '.join(differences)}; "
                                    f"{hint}")


def load_segformer_weights(model: nn.Module, path: str | os.PathLike) -> SegformerLoadReport:
    """Copy a local HF SegFormer checkpoint's encoder (and decoder when compatible) into a Vivim `model`."""
    path = Path(path)
    state, hf_config = read_segformer_checkpoint(path)
    if hf_config is not None:
        _check_config(path, hf_config, model)
    ours = model.state_dict()
    report = SegformerLoadReport(path)
    encoder: dict[str, Tensor] = {}
    decoder: dict[str, Tensor] = {}
    origin: dict[str, str] = {}  # our key -> the checkpoint's
    for key, tensor in state.items():
        target = map_segformer_key(key)
        origin[target] = key
        if target is None:
            report.skipped[key] = "no counterpart in Vivim (e.g. an image-classification head)"
        elif target not in ours:
            raise SegformerWeightsError(f"{path}: tensor {key} maps to {target}, which {model.config.variant} does not "
                                        f"have: the checkpoint's depths differ from the variant's "
                                        f"{model.config.transformer_depths}; use the matching variant")
        elif target.startswith("decoder."):
            decoder[target] = tensor
        else:
            encoder[target] = tensor
    if not encoder:
        raise SegformerWeightsError(f"{path}: no SegFormer encoder tensors found (expected keys like "
                                    f"segformer.encoder.block.0.0.attention.self.query.weight); is this a SegFormer "
                                    f"checkpoint?")
    wrong = [f"{k}: {tuple(v.shape)} in the checkpoint, {tuple(ours[k].shape)} in {model.config.variant}"
             for k, v in encoder.items() if v.shape != ours[k].shape]
    if wrong:
        raise SegformerWeightsError(f"{path}: the SegFormer encoder does not fit {model.config.variant} "
                                    f"(widths {model.config.embed_dims}): {'; '.join(wrong[:3])}. Use the variant "
                                    f"of the same SegFormer size (vivim-tiny: MiT-B0, vivim-b1: MiT-B1, vivim-b3: "
                                    f"MiT-B3)")
    missing_encoder = [k for k in ours if k.startswith("stages.") and ".temporal_blocks." not in k and k not in encoder]
    if missing_encoder:
        raise SegformerWeightsError(f"{path}: the checkpoint lacks {len(missing_encoder)} encoder tensor(s) of "
                                    f"{model.config.variant}, e.g. {missing_encoder[:3]}; its depths differ from "
                                    f"{model.config.transformer_depths}")
    load = dict(encoder)
    classifier = {k: v for k, v in decoder.items() if k.startswith("decoder.classifier.")}
    body = {k: v for k, v in decoder.items() if k not in classifier}
    if body:
        if all(v.shape == ours[k].shape for k, v in body.items()):
            load.update(body)
        else:
            report.skipped.update({origin[k]: f"decoder width differs from {model.config.decoder_dim}" for k in body})
    if classifier:
        if all(v.shape == ours[k].shape for k, v in classifier.items()) and body.keys() <= load.keys():
            load.update(classifier)
        else:
            count = next(iter(classifier.values())).shape[0]
            report.skipped.update({origin[k]: f"{count} classes in the checkpoint, {model.config.num_classes} here"
                                   for k in classifier})
    with torch.no_grad():
        for key, tensor in load.items():
            ours[key].copy_(tensor.to(ours[key].dtype))
    report.loaded = sorted(load)
    report.not_in_checkpoint = [k for k in ours if k not in load]
    return report
