"""SLD — Safe Latent Diffusion (Schramowski et al., CVPR 2023) as a ``StableDiffusionPipeline`` subclass.

Safety guidance pushes each denoising step away from a *safety concept* (the unlearning target's text)::

    g      = ε(x, p) − ε(x, ∅)                                   (classifier-free guidance direction)
    μ      = min(|ε(x, p) − ε(x, s)| · s_S, 1)  where  ε(x, p) − ε(x, s) < λ, else 0    (element-wise)
    γ      = μ · (ε(x, s) − ε(x, ∅)) + s_m · ν                  (ν: momentum, ν ← β_m ν + (1 − β_m) γ)
    ε̂      = ε(x, ∅) + s_g · (g − γ)     from the warm-up step on; before it, ε̂ = ε(x, ∅) + s_g · g

with SLD-Medium's defaults (HUB's configuration): ``s_S = 1000``, warm-up 10 of 50 steps, ``λ = 0.01``,
``s_m = 0.3``, ``β_m = 0.4``.  The warm-up scales with the schedule: by default it is
``round(sld_warmup_fraction · num_inference_steps)`` (0.2 · 50 = 10); an explicit ``sld_warmup_steps`` wins.
It costs one extra UNet pass per step, and needs classifier-free guidance (``guidance_scale > 1``).

The pipeline reuses the parent's ``__call__`` unchanged (same latents, generators, schedulers and batching):
while a call runs, a forward hook on the UNet rewrites the classifier-free-guidance batch's text half so that
the parent's ``uncond + s_g (text − uncond)`` equals the SLD update.  With guidance off (no safety concept,
``sld_guidance_scale <= 1``, or no CFG) no hook is installed and the output is the parent's, bit for bit.

The SLD "checkpoint" is a JSON method config (``write_sld_config``; ``<folder>/sld.json`` or any ``.json``)::

    {"hubkit_method": "sld", "concept": "Pointelli", "params": {"safety_concept": "Pointelli", ...},
     "metadata": {"method": "sld", "train_seconds": 0, ...}}

loaded onto a base pipeline by the method ``sld`` registered with :mod:`hubkit.models.methods`.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Mapping

import torch
from diffusers import StableDiffusionPipeline

from hubkit.atomic import write_text
from hubkit.models.methods import METHODS

#: SLD-Medium (Schramowski et al. 2023, Tab. 1), HUB's configuration; the warm-up is 10 of 50 steps.
SLD_MEDIUM: dict[str, Any] = {
    "sld_guidance_scale": 1000.0,
    "sld_warmup_fraction": 0.2,
    "sld_threshold": 0.01,
    "sld_momentum_scale": 0.3,
    "sld_mom_beta": 0.4,
}
SLD_PARAMS = ("safety_concept", "sld_guidance_scale", "sld_warmup_steps", "sld_warmup_fraction", "sld_threshold",
              "sld_momentum_scale", "sld_mom_beta")
METHOD_NAME = "sld"
CONFIG_FILE = "sld.json"  # inside a checkpoint folder
_UNSET = object()


class SLDPipeline(StableDiffusionPipeline):
    """``StableDiffusionPipeline`` plus safe latent guidance away from ``safety_concept``.

    The pipeline's own defaults (``pipe.safety_concept``, ``pipe.sld_params``) apply to every call, so code that
    only knows ``StableDiffusionPipeline`` gets SLD; per-call keyword arguments override them.
    """

    safety_concept: str | None = None
    sld_params: dict[str, Any]

    @classmethod
    def from_base(cls, base: StableDiffusionPipeline, safety_concept: str | None = None,
                  **sld_params: Any) -> "SLDPipeline":
        """An SLD pipeline sharing ``base``'s components (no copies) with the given defaults."""
        unknown = set(sld_params) - set(SLD_PARAMS)
        if unknown:
            raise TypeError(f"unknown SLD parameter(s) {sorted(unknown)}; known: {SLD_PARAMS}")
        comps = {k: v for k, v in base.components.items()}
        pipe = cls(**comps, requires_safety_checker=False)
        pipe.safety_concept = safety_concept
        pipe.sld_params = {**SLD_MEDIUM, **sld_params}
        if getattr(base, "_progress_bar_config", None) is not None:
            pipe.set_progress_bar_config(**base._progress_bar_config)
        return pipe

    def _sld_config(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        cfg = {**SLD_MEDIUM, **(getattr(self, "sld_params", None) or {})}
        cfg.setdefault("sld_warmup_steps", None)
        cfg["safety_concept"] = getattr(self, "safety_concept", None)
        for k, v in overrides.items():
            if v is not None or k == "safety_concept":
                cfg[k] = v
        return cfg

    @torch.no_grad()
    def __call__(self, *args, safety_concept: Any = _UNSET, sld_guidance_scale: float | None = None,
                 sld_warmup_steps: int | None = None, sld_warmup_fraction: float | None = None,
                 sld_threshold: float | None = None, sld_momentum_scale: float | None = None,
                 sld_mom_beta: float | None = None, **kwargs):
        overrides = dict(sld_guidance_scale=sld_guidance_scale, sld_warmup_steps=sld_warmup_steps,
                         sld_warmup_fraction=sld_warmup_fraction, sld_threshold=sld_threshold,
                         sld_momentum_scale=sld_momentum_scale, sld_mom_beta=sld_mom_beta)
        if safety_concept is not _UNSET:
            overrides["safety_concept"] = safety_concept
        cfg = self._sld_config(overrides)
        call = inspect.signature(StableDiffusionPipeline.__call__).bind(self, *args, **kwargs)
        call.apply_defaults()
        given = call.arguments
        enabled = (bool(cfg["safety_concept"]) and float(cfg["sld_guidance_scale"]) > 1.0
                   and float(given["guidance_scale"]) > 1.0 and self.unet.config.time_cond_proj_dim is None)
        if not enabled:
            return super().__call__(*args, **kwargs)

        steps = int(given["num_inference_steps"])
        for key in ("timesteps", "sigmas"):
            if given.get(key) is not None:
                steps = len(given[key])
        warmup = cfg["sld_warmup_steps"]
        if warmup is None:
            warmup = int(round(float(cfg["sld_warmup_fraction"]) * steps))
        device = self._execution_device
        safety_emb, _ = self.encode_prompt(cfg["safety_concept"], device, 1, False, clip_skip=given.get("clip_skip"))
        state = _SLDState(safety_emb, int(warmup), float(cfg["sld_guidance_scale"]), float(cfg["sld_threshold"]),
                          float(cfg["sld_momentum_scale"]), float(cfg["sld_mom_beta"]))
        handle = self.unet.register_forward_hook(state.hook, with_kwargs=True)
        try:
            return super().__call__(*args, **kwargs)
        finally:
            handle.remove()


class _SLDState:
    """Per-call SLD state; ``hook`` runs after every UNet forward of the denoising loop."""

    def __init__(self, safety_emb, warmup, scale, threshold, momentum_scale, mom_beta):
        self.safety_emb = safety_emb
        self.warmup = warmup
        self.scale = scale
        self.threshold = threshold
        self.momentum_scale = momentum_scale
        self.mom_beta = mom_beta
        self.momentum = None
        self.step = 0
        self.inside = False

    def hook(self, module, args, kwargs, output):
        if self.inside:  # our own safety pass
            return None
        sample = args[0] if args else kwargs["sample"]
        timestep = args[1] if len(args) > 1 else kwargs["timestep"]
        eps = output[0] if isinstance(output, tuple) else output.sample
        if eps.shape[0] % 2:
            raise RuntimeError("SLD expects the classifier-free-guidance batch [uncond, text]")
        n = eps.shape[0] // 2
        e_u, e_t = eps[:n], eps[n:]
        kw = {k: v for k, v in kwargs.items() if k not in ("sample", "timestep", "encoder_hidden_states", "return_dict")}
        emb = self.safety_emb.to(dtype=e_u.dtype).expand(n, -1, -1)
        self.inside = True
        try:
            e_s = module(sample[:n], timestep, encoder_hidden_states=emb, return_dict=False, **kw)[0]
        finally:
            self.inside = False
        diff = e_t - e_s
        scale = torch.clamp(diff.abs() * self.scale, max=1.0)
        scale = torch.where(diff >= self.threshold, torch.zeros_like(scale), scale)
        gamma = (e_s - e_u) * scale
        if self.momentum is None:
            self.momentum = torch.zeros_like(gamma)
        gamma = gamma + self.momentum_scale * self.momentum
        self.momentum = self.mom_beta * self.momentum + (1 - self.mom_beta) * gamma
        step, self.step = self.step, self.step + 1
        if step < self.warmup:
            return None
        new = torch.cat([e_u, e_t - gamma])
        if isinstance(output, tuple):
            return (new,) + tuple(output[1:])
        output.sample = new
        return output


# --------------------------------------------------------------------------------------------
# method config ("checkpoint") and loader
# --------------------------------------------------------------------------------------------
def sld_params(safety_concept: str, **overrides: Any) -> dict[str, Any]:
    """Full SLD parameter dict (SLD-Medium with ``overrides``)."""
    unknown = set(overrides) - set(SLD_PARAMS)
    if unknown:
        raise TypeError(f"unknown SLD parameter(s) {sorted(unknown)}; known: {SLD_PARAMS}")
    params = {"safety_concept": safety_concept, **SLD_MEDIUM}
    params.update({k: v for k, v in overrides.items() if v is not None})
    return params


def write_sld_config(path: Path, concept: str, *, safety_concept: str | None = None,
                     metadata: Mapping[str, Any] | None = None, **params: Any) -> Path:
    """Write the SLD method config for ``concept`` (safety concept: ``safety_concept`` or the concept itself).

    ``path`` is a ``.json`` file, or a folder that receives ``sld.json``.  Returns the file written (the one
    ``--model`` takes).
    """
    path = Path(path)
    if path.suffix != ".json":
        path = path / CONFIG_FILE
    full = sld_params(safety_concept or concept, **params)
    meta = {"method": METHOD_NAME, "concept": concept, "train_seconds": 0, "train_peak_mem_mb": 0,
            "steps": 0, **(metadata or {})}
    doc = {"hubkit_method": METHOD_NAME, "concept": concept, "params": full, "metadata": meta}
    return write_text(path, json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


@METHODS.register(METHOD_NAME)
def load_sld(base_pipe: StableDiffusionPipeline, params: Mapping[str, Any]) -> SLDPipeline:
    """``fn(base_pipe, params) -> pipeline`` for the method registry: SLD on ``base_pipe``'s components."""
    params = dict(params)
    target = params.pop("concept", None)            # the loader passes the config's "concept" along
    concept = params.pop("safety_concept", None) or target
    if not concept:
        from hubkit.errors import CheckpointError

        raise CheckpointError("SLD method config: params.safety_concept is missing or empty; "
                              "write it with hubkit.models.sld.write_sld_config")
    return SLDPipeline.from_base(base_pipe, safety_concept=concept, **params)
