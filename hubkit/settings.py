"""Generation settings: the protocol constants every image depends on.

HUB leaves them at the diffusers defaults for SD 1.x (50 steps, CFG 7.5, 512x512; reference §2) and lets
the scheduler vary per unlearning method, which confounds every comparison with the base model
(reference §10.4 item 27).  Here they are fixed in one frozen object that is part of every image's
store key, so two runs that differ in any setting can never share an image.

``scheduler`` is ``None`` to keep the scheduler the loaded pipeline ships with, or the name of a
diffusers scheduler class (``"DDIMScheduler"``, ``"PNDMScheduler"``, ``"LMSDiscreteScheduler"``, ...) to
run every model -- base and unlearned -- with the same sampler (built with ``from_config`` from the
pipeline's own scheduler config, so betas and timestep spacing are kept).

A model folder may carry a ``hubkit.json`` with any of these keys (the micro world ships one with
``steps``, ``guidance``, ``height``, ``width``); they replace the SD-1.x defaults::

    {"steps": 20, "guidance": 5.0, "height": 64, "width": 64}

The keys may also sit in a ``"generation"`` object inside that file; ``"image_size"`` sets both height
and width. Other keys (method metadata) are ignored here.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubkit.errors import ConfigError

SD1_STEPS = 50
SD1_GUIDANCE = 7.5
SD1_SIZE = 512

_DTYPES = {
    "float32": "float32", "fp32": "float32", "torch.float32": "float32", "float": "float32",
    "float16": "float16", "fp16": "float16", "half": "float16", "torch.float16": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16", "torch.bfloat16": "bfloat16",
}

SETTINGS_FILE = "hubkit.json"


def normalise_dtype(dtype: Any) -> str:
    """``torch.float16`` / ``"fp16"`` / ``"float16"`` -> ``"float16"``; raises ``ConfigError`` otherwise."""
    key = str(dtype).strip().lower()
    if key not in _DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; use one of float32, float16, bfloat16")
    return _DTYPES[key]


@dataclass(frozen=True)
class GenerationSettings:
    """Everything besides the model, prompt and seed that decides an image."""

    steps: int = SD1_STEPS
    guidance: float = SD1_GUIDANCE
    height: int = SD1_SIZE
    width: int = SD1_SIZE
    dtype: str = "float32"
    negative_prompt: str | None = None
    scheduler: str | None = None

    def __post_init__(self):
        try:
            object.__setattr__(self, "steps", int(self.steps))
            object.__setattr__(self, "guidance", float(self.guidance))
            object.__setattr__(self, "height", int(self.height))
            object.__setattr__(self, "width", int(self.width))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad generation setting: {exc}") from exc
        object.__setattr__(self, "dtype", normalise_dtype(self.dtype))
        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        if self.height < 8 or self.width < 8 or self.height % 8 or self.width % 8:
            raise ConfigError(f"height and width must be positive multiples of 8, got {self.height}x{self.width}")
        if self.negative_prompt is not None and not isinstance(self.negative_prompt, str):
            raise ConfigError(f"negative_prompt must be a string or None, got {self.negative_prompt!r}")
        if self.scheduler is not None and not isinstance(self.scheduler, str):
            raise ConfigError(f"scheduler must be a diffusers scheduler class name or None, got {self.scheduler!r}")

    # -- construction ---------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict, **overrides) -> "GenerationSettings":
        """Build from a mapping; unknown keys are ignored, ``image_size`` sets height and width."""
        if not isinstance(data, dict):
            raise ConfigError(f"generation settings must be a mapping, got {type(data).__name__}")
        if isinstance(data.get("generation"), dict):
            data = {**{k: v for k, v in data.items() if k != "generation"}, **data["generation"]}
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {}
        if "image_size" in data:
            kwargs["height"] = kwargs["width"] = data["image_size"]
        aliases = {"num_inference_steps": "steps", "guidance_scale": "guidance", "size": "image_size"}
        for key, value in data.items():
            key = aliases.get(key, key)
            if key == "image_size":
                kwargs["height"] = kwargs["width"] = value
            elif key in names:
                kwargs[key] = value
        kwargs.update(overrides)
        return cls(**kwargs)

    @classmethod
    def from_model_folder(cls, path: str | Path, **overrides) -> "GenerationSettings":
        """SD-1.x defaults, replaced by the keys of ``<path>/hubkit.json`` (or the one beside a file).

        No ``hubkit.json`` -> the defaults (plus ``overrides``). A malformed file -> ``ConfigError``.
        """
        path = Path(path)
        candidates = [path / SETTINGS_FILE] if path.is_dir() else [path.parent / SETTINGS_FILE]
        for candidate in candidates:
            if candidate.is_file():
                try:
                    data = json.loads(candidate.read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    raise ConfigError(f"{candidate}: not readable JSON ({exc}); fix or delete it") from exc
                try:
                    return cls.from_dict(data, **overrides)
                except ConfigError as exc:
                    raise ConfigError(f"{candidate}: {exc}") from exc
        return cls(**overrides)

    # -- helpers --------------------------------------------------------------------------------------
    def replace(self, **changes) -> "GenerationSettings":
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        parts = [f"{self.steps} steps", f"CFG {self.guidance:g}", f"{self.width}x{self.height}", self.dtype]
        if self.scheduler:
            parts.append(self.scheduler)
        if self.negative_prompt:
            parts.append(f"negative={self.negative_prompt!r}")
        return ", ".join(parts)
