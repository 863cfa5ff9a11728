"""Format ``lora``: diffusers/peft or kohya LoRA weights, checked against the base, fused by default."""

from __future__ import annotations

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

    def load(self, path: Path, pipe, ctx) -> FormatResult:
        file = self._file(path)
        ins = inspect_file(file)
        if ins.flat() is None:
            raise CheckpointError(f"{model_option(path)}: LoRA weights must be one flat state dict")
        sd = io.load_tensors(file)
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
        return FormatResult(pipe, {"components": comps, "lora_fused": fuse, "lora_scale": scale,
                                   "lora_tensors": n_file})


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
