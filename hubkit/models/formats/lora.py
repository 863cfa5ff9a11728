"""Format ``lora``: diffusers/peft or kohya LoRA weights, checked against the base, fused by default."""

from __future__ import annotations

import re
from pathlib import Path

from hubkit.errors import CheckpointError
from hubkit.models import io
from hubkit.models.formats.common import LORA_FILES, file_inspection, wrap_error
from hubkit.models.io import inspect_file, is_lora_keys, model_option
from hubkit.models.registry import FormatResult, NotThisFormat, register_format


@register_format("lora")
class Lora:
    """diffusers/peft LoRA weights, loaded with ``pipe.load_lora_weights`` (from a dict we read safely)."""

    def _file(self, path: Path) -> Path:
        if path.is_dir():
            for name in LORA_FILES:
                if (path / name).is_file():
                    return path / name
            raise NotThisFormat(f"folder without {' or '.join(LORA_FILES)}")
        return path

    def detect(self, path: Path) -> bool:
        ins = file_inspection(self._file(path))
        if not is_lora_keys(ins.keys):
            raise NotThisFormat("no LoRA keys (lora_A/lora_B/lora_down/lora_up)")
        return True

    layout: str | None = None  # recorded as lora_layout when not diffusers/peft or kohya

    def _state(self, file: Path, path: Path) -> dict:
        """The file's LoRA tensors under the keys ``pipe.load_lora_weights`` reads."""
        if inspect_file(file).flat() is None:
            raise CheckpointError(f"{model_option(path)}: LoRA weights must be one flat state dict")
        return io.load_tensors(file)

    def load(self, path: Path, pipe, ctx) -> FormatResult:
        sd = self._state(self._file(path), path)
        _precheck_lora(sd, pipe, path)
        n_file = sum(_is_lora_tensor(k) for k in sd)
        fuse = bool(ctx.options.get("lora_fuse", True))
        scale = ctx.options.get("lora_scale")
        if scale is None:
            scale = float(ctx.metadata.get("lora_scale", 1.0))
        try:
            pipe.load_lora_weights(dict(sd), adapter_name="hubkit")
        except Exception as exc:  # noqa: BLE001
            raise wrap_error(path, "the LoRA weights", exc) from None
        n_loaded = sum("lora_" in n for m in (pipe.unet, pipe.text_encoder) for n, _ in m.named_parameters())
        if n_loaded < n_file:
            raise CheckpointError(f"{model_option(path)}: only {n_loaded} of the file's {n_file} LoRA tensors found a "
                                  "module in the base model; is --base-model the model this LoRA was trained on?")
        if fuse:
            pipe.fuse_lora(lora_scale=scale, adapter_names=["hubkit"])
            pipe.unload_lora_weights()
        elif scale != 1.0:
            pipe.set_adapters(["hubkit"], adapter_weights=[scale])
        comps = sorted({k.split(".")[0] for k in sd if k.split(".")[0] in ("unet", "text_encoder")}) or ["unet"]
        details = {"components": comps, "lora_fused": fuse, "lora_scale": scale, "lora_tensors": n_file}
        if self.layout:
            details["lora_layout"] = self.layout
        return FormatResult(pipe, details)


_ATTN_PROCS_KEY = re.compile(r"^(?P<module>.+)\.processor\.(?P<proj>to_q|to_k|to_v|to_out)_lora\.(?P<ud>down|up)\.weight$")


def attn_procs_lora_to_peft(sd: dict) -> dict | None:
    """The peft/diffusers keys (``unet.<module>.to_k.lora_A.weight``) of an attn-procs LoRA; None if not one."""
    out = {}
    for k, v in sd.items():
        m = _ATTN_PROCS_KEY.match(k)
        if m is None:
            return None
        proj = "to_out.0" if m["proj"] == "to_out" else m["proj"]
        out[f"unet.{m['module']}.{proj}.lora_{'A' if m['ud'] == 'down' else 'B'}.weight"] = v
    return out or None


@register_format("attn-procs-lora")
class AttnProcsLora(Lora):
    """MACE-style LoRA attention-processor weights (diffusers <= 0.24 ``save_attn_procs``: diffusers 0.42's
    ``load_lora_weights`` silently loads none of them), converted to peft keys and loaded like ``lora``."""

    layout = "attn-procs"

    def detect(self, path: Path) -> bool:
        ins = file_inspection(self._file(path))
        if ins.flat() is None or attn_procs_lora_to_peft(ins.flat()) is None:
            raise NotThisFormat("not attention-processor LoRA keys (<module>.processor.to_k_lora.down.weight)")
        return True

    def _state(self, file: Path, path: Path) -> dict:
        ins = inspect_file(file)
        return attn_procs_lora_to_peft(io.load_tensors(file) if ins.kind == "safetensors" else ins.flat())


def _is_lora_tensor(key: str) -> bool:
    return any(m in key for m in io.LORA_MARKERS) or (key.startswith(("lora_unet_", "lora_te_"))
                                                       and not key.endswith(".alpha"))


def _precheck_lora(sd: dict, pipe, path: Path) -> None:
    """For peft/diffusers-style keys (``unet.<module>.lora_A.weight``): the module exists and the shapes fit."""
    roots = {"unet": pipe.unet, "text_encoder": pipe.text_encoder}
    for key, value in sd.items():
        for marker, dim in ((".lora_A.", 1), (".lora_B.", 0)):
            if marker not in key:
                continue
            root, _, module_path = key.split(marker)[0].partition(".")
            if root not in roots:
                break
            try:
                module = roots[root].get_submodule(module_path)
            except AttributeError:
                raise CheckpointError(f"{model_option(path)}: LoRA key {key!r} targets {root}.{module_path}, which the "
                                      "base model does not have; is --base-model the model this LoRA was "
                                      "trained on?") from None
            want = getattr(module, "in_features" if dim == 1 else "out_features", None)
            if want is None:
                want = getattr(module, "in_channels" if dim == 1 else "out_channels", None)
            if want is not None and value.shape[dim] != want:
                raise CheckpointError(f"{model_option(path)}: LoRA key {key!r} has shape {tuple(value.shape)}, which "
                                      f"does not fit {root}.{module_path} ({'in' if dim else 'out'} features {want})")
            break
