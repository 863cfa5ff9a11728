"""Formats ``unet-state-dict`` and ``text-encoder``: component state dicts applied onto the base model."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hubkit.errors import CheckpointError
from hubkit.models import io
from hubkit.models.formats.common import (
    DIFFUSERS_WEIGHTS,
    TEXT_ARCH_KEYS,
    TEXT_FOLDER_FILES,
    TEXT_IGNORE,
    TRANSFORMERS_WEIGHTS,
    UNET_ARCH_KEYS,
    UNET_FOLDER_FILES,
    component_weights,
    config_diff,
    file_inspection,
    hub_method_details,
    read_weights,
    text_has_prefix,
    wrap_error,
)
from hubkit.models.io import (
    apply_state_dict,
    declares_partial,
    inspect_file,
    is_ldm_full_keys,
    is_ldm_unet_keys,
    is_lora_keys,
    is_text_keys,
    is_unet_keys,
    model_option,
    normalise_text_keys,
    strip_common_prefix,
)
from hubkit.models.formats.lora import attn_procs_lora_to_peft
from hubkit.models.registry import FormatResult, NotThisFormat, register_format


def _split_prefixed(flat: dict) -> dict[str, dict]:
    """``{"unet.x": .., "text_encoder.y": ..}`` → components; a flat dict stays ``{"": flat}``."""
    if flat and all(k.startswith(("unet.", "text_encoder.")) for k in flat) and any(
            k.startswith("text_encoder.") for k in flat):
        out: dict[str, dict] = {"unet": {}, "text_encoder": {}}
        for k, v in flat.items():
            comp, _, rest = k.partition(".")
            out[comp][rest] = v
        return {c: d for c, d in out.items() if d}
    return {"": flat}


# Concept Ablation's ``CustomDiffusionPipeline.save_pretrained(parameter_group="cross-attn")`` (nupurkmr9/
# concept-ablation, diffusers/model_pipeline.py) — HUB's ``models/ac/{target}.bin``: a pickled
# ``{"unet": {<every attn2.to_k / attn2.to_v parameter, by diffusers name>}}``, nothing else changed.
_AC_CROSS_ATTN_KEY = re.compile(r"^(down_blocks\.\d+|mid_block|up_blocks\.\d+)\.attentions\.\d+\.transformer_blocks"
                                r"\.\d+\.attn2\.to_[kv]\.weight$")


def is_ac_cross_attn(ins, unet_keys, own_keys) -> bool:
    """AC's published cross-attn delta: a pickle whose ``"unet"`` entry holds exactly the base UNet's
    ``attn2.to_k``/``attn2.to_v`` weights (all of them, nothing else)."""
    if ins.kind != "pickle" or "unet" not in ins.components or "" in ins.components:
        return False
    want = {k for k in own_keys if _AC_CROSS_ATTN_KEY.match(k)}
    return bool(want) and set(unet_keys) == want


@register_format("unet-state-dict")
class UNetStateDict:
    """UNet weights applied onto the base UNet (and, AC-style, optional text-encoder weights onto its encoder)."""

    def _source(self, path: Path) -> tuple[str, list[Path], Path | None]:
        """("file", [weights]) | ("folder", [unet file], text file) | ("diffusers-unet", [weights])."""
        if path.is_dir():
            for names in (UNET_FOLDER_FILES, TEXT_FOLDER_FILES):
                found = [n for n in names if (path / n).is_file()]
                if len(found) > 1:  # which one was meant? evaluating either silently could test the wrong model
                    raise CheckpointError(f"{model_option(path)}: holds {' and '.join(found)}, two candidate weight "
                                          f"files for one component; keep one, or point --model at one of them")
            unet = next((path / n for n in UNET_FOLDER_FILES if (path / n).is_file()), None)
            text = next((path / n for n in TEXT_FOLDER_FILES if (path / n).is_file()), None)
            if unet is not None:
                return "folder", [unet], text
            cfg = path / "config.json"
            if cfg.is_file():
                data = io.read_json(cfg)
                if isinstance(data, dict) and data.get("_class_name") == "UNet2DConditionModel":
                    files = component_weights(path, DIFFUSERS_WEIGHTS)
                    if not files:
                        raise NotThisFormat(f"diffusers UNet folder without {' or '.join(DIFFUSERS_WEIGHTS)}")
                    return "diffusers-unet", files, None
            raise NotThisFormat(f"folder without {'/'.join(UNET_FOLDER_FILES)} or a UNet2DConditionModel config.json")
        return "file", [path], None

    def detect(self, path: Path) -> bool:
        kind, files, _ = self._source(path)
        if kind == "diffusers-unet":
            return True
        ins = file_inspection(files[0])
        if is_lora_keys(ins.keys):
            raise NotThisFormat("LoRA keys")
        if ins.flat() and attn_procs_lora_to_peft(ins.flat()) is not None:  # the attn-procs-lora format's
            raise NotThisFormat("LoRA attention-processor keys")
        if "unet" in ins.components:
            return True
        flat = ins.flat() or {}
        if is_ldm_unet_keys(flat):
            if is_ldm_full_keys(flat):
                raise NotThisFormat("a full LDM checkpoint")
            return True
        comps = _split_prefixed(flat)
        if "unet" in comps or is_unet_keys(flat):
            return True
        raise NotThisFormat(f"not UNet keys (first key {next(iter(flat), None)!r})")

    def load(self, path: Path, pipe, ctx) -> FormatResult:
        kind, files, text_file = self._source(path)
        partial = declares_partial(ctx.metadata)
        details: dict[str, Any] = {"components": ["unet"], "partial": partial}
        if kind == "diffusers-unet":
            cfg = io.read_json(path / "config.json")
            diff = config_diff(dict(pipe.unet.config), cfg, UNET_ARCH_KEYS)
            if diff:
                raise CheckpointError(f"{model_option(path)}: UNet config.json differs from the base UNet's: {diff}; "
                                      "is --base-model the model this UNet was made from?")
            comps = {"unet": read_weights(files)}
        else:
            ins = inspect_file(files[0])
            if ins.kind == "safetensors":
                comps = _split_prefixed(io.load_tensors(files[0]))
            else:
                comps = dict(ins.components)
            if "" in comps:
                comps = {"unet": comps.pop("")}
            if text_file is not None:
                tins = inspect_file(text_file)
                tflat = io.load_tensors(text_file) if tins.kind == "safetensors" else tins.flat()
                if tflat is None:
                    raise CheckpointError(f"{model_option(text_file)}: {tins.problem or 'not a flat state dict'}")
                comps["text_encoder"] = tflat
        unet_sd = strip_common_prefix(comps["unet"])
        method_hint = None
        if kind == "file" and not partial and is_ac_cross_attn(ins, unet_sd, pipe.unet.state_dict()):
            method_hint = "ac"  # AC's layout declares itself: only the cross-attention key/value weights
        details.update(hub_method_details(method_hint, ctx.metadata))
        if is_ldm_unet_keys(unet_sd):
            from hubkit.models.ldm import ldm_unet_to_diffusers

            try:
                unet_sd = ldm_unet_to_diffusers(unet_sd, pipe.unet.config)
            except Exception as exc:  # noqa: BLE001
                raise wrap_error(path, "the LDM UNet keys", exc) from None
            unet_sd = {k: v for k, v in unet_sd.items() if v is not None}
            details["converted_from"] = "ldm"
        if method_hint == "ac":
            details["partial"] = True
        details["unet"] = apply_state_dict(pipe.unet, unet_sd, what="the UNet state dict", source=path,
                                           allow_missing=partial or method_hint == "ac")
        if "text_encoder" in comps:
            text_sd = normalise_text_keys(strip_common_prefix(comps["text_encoder"], ("module.", "model.")),
                                          text_has_prefix(pipe.text_encoder))
            details["text_encoder"] = apply_state_dict(pipe.text_encoder, text_sd, what="the text-encoder state dict",
                                                       source=path, allow_missing=partial,
                                                       ignore_unexpected=TEXT_IGNORE)
            details["components"].append("text_encoder")
        return FormatResult(pipe, details)


@register_format("text-encoder")
class TextEncoder:
    """CLIP text-encoder weights (AdvUnlearn) applied onto the base text encoder."""

    def _files(self, path: Path) -> tuple[list[Path], dict | None]:
        if path.is_dir():
            cfg_file = path / "config.json"
            if not cfg_file.is_file():
                raise NotThisFormat("folder without config.json")
            cfg = io.read_json(cfg_file)
            archs = cfg.get("architectures") or [] if isinstance(cfg, dict) else []
            if not isinstance(cfg, dict) or not ("CLIPTextModel" in archs or cfg.get("model_type") == "clip_text_model"):
                raise NotThisFormat("config.json is not a CLIPTextModel config")
            files = component_weights(path, TRANSFORMERS_WEIGHTS)
            if not files:
                raise NotThisFormat(f"CLIPTextModel folder without {' or '.join(TRANSFORMERS_WEIGHTS)}")
            return files, cfg
        return [path], None

    def detect(self, path: Path) -> bool:
        files, cfg = self._files(path)
        if cfg is not None:
            return True
        ins = file_inspection(files[0])
        keys = ins.keys if list(ins.components) in ([""], ["text_encoder"]) else []
        if not is_text_keys(keys):
            first = next(iter(ins.keys), None)
            raise NotThisFormat(f"not CLIP text-model keys (first key {first!r})")
        return True

    def load(self, path: Path, pipe, ctx) -> FormatResult:
        files, cfg = self._files(path)
        if cfg is not None:
            diff = config_diff(pipe.text_encoder.config.to_dict(), cfg, TEXT_ARCH_KEYS)
            if diff:
                raise CheckpointError(f"{model_option(path)}: text encoder config.json differs from the base's: {diff}; "
                                      "is --base-model the model this text encoder was made from?")
            sd = read_weights(files)
        else:
            ins = inspect_file(files[0])
            sd = io.load_tensors(files[0]) if ins.kind == "safetensors" else next(iter(ins.components.values()))
        sd = normalise_text_keys(sd, text_has_prefix(pipe.text_encoder))
        info = apply_state_dict(pipe.text_encoder, sd, what="the text-encoder state dict", source=path,
                                allow_missing=declares_partial(ctx.metadata), ignore_unexpected=TEXT_IGNORE)
        return FormatResult(pipe, {"components": ["text_encoder"], "text_encoder": info,
                                   **hub_method_details(None, ctx.metadata)})


# ---------------------------------------------------------------------------------------------- attn-procs LoRA
# diffusers <= 0.24 ``unet.save_attn_procs`` of LoRA attention processors (MACE's per-concept LoRAs,
# Shilin-LU/MACE src/cfr_lora_training.py, diffusers 0.22): ``pytorch_lora_weights.{safetensors,bin}`` with keys
# ``<attention module>.processor.{to_q,to_k,to_v,to_out}_lora.{down,up}.weight`` (no ``unet.`` prefix).
