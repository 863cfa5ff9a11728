"""Format ``method-config``: a JSON naming an inference-time method (SLD), optionally on top of another checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hubkit.errors import CheckpointError, RegistryError
from hubkit.models import io
from hubkit.models.formats.common import wrap_error
from hubkit.models.io import model_option
from hubkit.models.registry import FormatResult, NotThisFormat, register_format


@register_format("method-config", wants_base_pipe=False)
class MethodConfig:
    """``{"hubkit_method": "sld", "params": {...}, "concept": "...", "model": "<optional checkpoint>"}``."""

    def detect(self, path: Path) -> bool:
        if path.is_file() and path.suffix.lower() != ".json":
            raise NotThisFormat("not a .json file")
        if io.method_config_file(path) is None:
            raise NotThisFormat('no JSON with a top-level "hubkit_method" key' if path.is_file() else
                                'folder without exactly one *.json holding "hubkit_method"')
        return True

    def load(self, path: Path, base_pipe, ctx) -> FormatResult:
        from hubkit.models.methods import METHODS

        config = io.method_config_file(path)
        data = io.read_json(config)
        name = data["hubkit_method"]
        params = data.get("params") or {}
        if not isinstance(name, str) or not isinstance(params, dict):
            raise CheckpointError(f"{model_option(path)}: \"hubkit_method\" must be a string and \"params\" an object")
        params = dict(params)
        if "concept" in data and "concept" not in params:
            params["concept"] = data["concept"]
        try:
            fn = METHODS.get(name)
        except RegistryError as exc:
            raise CheckpointError(f"{model_option(path)}: {exc}") from exc
        details: dict[str, Any] = {"method": name}
        inputs, storage = [], None
        if data.get("model"):
            inner_path = Path(data["model"])
            if not inner_path.is_absolute():
                inner_path = config.parent / inner_path
            if not inner_path.exists():
                raise CheckpointError(f"{model_option(path)}: its \"model\" {inner_path} does not exist; fix the "
                                      "path (relative paths are relative to the JSON file)")
            inner = ctx.load_nested(inner_path)
            pipe = inner.pipe
            details["wrapped"] = {"path": str(inner_path), "format": inner.details.get("format"), **inner.details}
            inputs = [inner_path, *inner.inputs]
            storage = io.storage_bytes(path) + io.storage_bytes(inner_path)
        else:
            pipe = ctx.base_pipe()
        inputs.append(config)
        try:
            out = fn(pipe, params)
        except CheckpointError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise wrap_error(path, f"method {name!r} with params {json.dumps(params, sort_keys=True)}", exc) from None
        if not all(hasattr(out, a) for a in ("unet", "vae", "text_encoder", "scheduler", "tokenizer")):
            raise CheckpointError(f"{model_option(path)}: method {name!r} returned a {type(out).__name__}, "
                                  "not a StableDiffusionPipeline")
        method_config = {"method": name, "params": params}
        return FormatResult(out, details, method_config=method_config, inputs=inputs, storage_bytes=storage)
