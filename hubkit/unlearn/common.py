"""Shared machinery of the unlearning methods: base loading, concept resolution, measurement, output.

Every method writes one *checkpoint* that ``--model`` accepts:

* weight-editing methods (ESD, UCE) write a folder ``OUT/`` holding ``unet.safetensors`` (a UNet state dict
  with diffusers' key names, e.g. ``down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight``) and
  ``hubkit.json`` (the same metadata as the safetensors header's ``__metadata__``).  By default only the
  parameters the method may change are stored (like the official ESD/UCE scripts); ``keys="all"`` stores
  the full UNet; ``--model`` loads it with the ``unet-state-dict`` format (``hubkit.models.formats``).
* inference-time methods (SLD) write a JSON method config (see :mod:`hubkit.models.sld`).

Files are written atomically (``hubkit.atomic``), the weights before ``hubkit.json``.
"""

from __future__ import annotations

import json
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch

from hubkit.atomic import write_bytes

UNET_FILE = "unet.safetensors"
META_FILE = "hubkit.json"


# --------------------------------------------------------------------------------------------
# base model
# --------------------------------------------------------------------------------------------
@dataclass
class Base:
    """A loaded base pipeline plus its ``hubkit.json`` generation defaults (empty for plain folders)."""

    pipe: Any                      # diffusers.StableDiffusionPipeline
    source: str                    # folder it came from, or "<in-memory>"
    defaults: dict = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.defaults.get("height") or self.pipe.unet.config.sample_size * self.pipe.vae_scale_factor)

    @property
    def width(self) -> int:
        return int(self.defaults.get("width") or self.pipe.unet.config.sample_size * self.pipe.vae_scale_factor)

    @property
    def steps(self) -> int:
        return int(self.defaults.get("steps") or 50)

    @property
    def guidance(self) -> float:
        return float(self.defaults.get("guidance") or 7.5)


def load_base(base, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> Base:
    """Load an SD-1.x diffusers folder (or take an in-memory ``StableDiffusionPipeline``) for editing.

    The pipeline's components are *not* copied: methods must deepcopy what they change.
    """
    from diffusers import StableDiffusionPipeline

    from hubkit.errors import CheckpointError

    if isinstance(base, StableDiffusionPipeline):
        pipe, source, defaults = base, "<in-memory>", dict(getattr(base, "hubkit_defaults", {}) or {})
    else:
        folder = Path(base)
        if not (folder / "model_index.json").is_file():
            raise CheckpointError(f"{folder}: not a diffusers pipeline folder (no model_index.json); "
                                  "pass --base a Stable Diffusion 1.x folder")
        pipe = StableDiffusionPipeline.from_pretrained(
            str(folder), dtype=dtype, safety_checker=None, feature_extractor=None,
            requires_safety_checker=False, local_files_only=True)
        source = str(folder)
        meta = folder / META_FILE
        defaults = json.loads(meta.read_text()) if meta.is_file() else {}
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    for module in (pipe.unet, pipe.text_encoder, pipe.vae):
        module.requires_grad_(False)
        module.eval()
    return Base(pipe=pipe, source=source, defaults=defaults)


@torch.no_grad()
def encode_texts(pipe, texts: Sequence[str]) -> torch.Tensor:
    """Text-encoder hidden states ``[N, 77, D]`` exactly as the pipeline conditions on them."""
    emb, _ = pipe.encode_prompt(list(texts), pipe.unet.device, 1, False)
    return emb


# --------------------------------------------------------------------------------------------
# concepts
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConceptSpec:
    name: str                               # what the checkpoint's metadata calls the concept
    keywords: tuple[str, ...]               # the texts the method erases (all of them)
    category: str | None = None             # the world's category when a world knows the concept
    neighbours: tuple[str, ...] = ()        # the world's neighbours (concepts to keep) when known


def resolve_concept(concept: str | Sequence[str], *, name: str | None = None,
                    language: str = "English") -> ConceptSpec:
    """Turn ``--concept`` into keywords.

    A string naming a concept an installed world knows (``hubkit.worlds.find_concept``; the micro world's
    ``"weapon"``, ``"Pointelli"``; case-insensitive) expands to its keywords in ``language`` (weapon -> weapon,
    knife, sword, axe, spear); any other string is its own single keyword; a list is taken as the keywords
    themselves (named by ``name`` or their comma-joined text).
    """
    if isinstance(concept, str):
        items = [concept]
    else:
        items = [str(c) for c in concept]
    items = [c.strip() for c in items if c and c.strip()]
    if not items:
        raise ValueError("empty concept: give at least one keyword")
    if len(items) == 1:
        from hubkit.worlds import find_concept

        known = find_concept(items[0], language)
        if known is not None:
            return ConceptSpec(name=name or known.name, keywords=tuple(known.keywords),
                               category=known.category, neighbours=tuple(known.neighbours))
    return ConceptSpec(name=name or ", ".join(items), keywords=tuple(dict.fromkeys(items)))


def expand_templates(keywords: Iterable[str], templates: Sequence[str]) -> list[str]:
    """Fill each ``{}`` template with each keyword (keyword-major order, duplicates dropped)."""
    out: list[str] = []
    for kw in keywords:
        for tpl in templates:
            out.append(tpl.format(kw) if "{}" in tpl else tpl)
    return list(dict.fromkeys(out))


# --------------------------------------------------------------------------------------------
# measurement
# --------------------------------------------------------------------------------------------
class Measure:
    """Wall time and peak memory of a block: peak RSS (``getrusage``) on CPU, peak allocated on CUDA.

    ``getrusage`` gives the process' peak RSS since it started, which includes loading the base model.
    """

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.seconds = 0.0
        self.peak_mem_mb = 0.0

    def __enter__(self) -> "Measure":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mem_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self.peak_mem_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        self.seconds = time.perf_counter() - self._t0


# --------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------
def atomic_write_json(path: Path, obj: Any) -> None:
    write_bytes(Path(path), (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode())


def header_metadata(metadata: Mapping[str, Any]) -> dict[str, str]:
    """safetensors headers hold strings: strings stay as they are, everything else is JSON-encoded."""
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}


def read_checkpoint_metadata(path: Path) -> dict:
    """The metadata of a checkpoint folder (``hubkit.json``) or a ``.safetensors`` file (its header)."""
    path = Path(path)
    if path.is_dir():
        return json.loads((path / META_FILE).read_text())
    from safetensors import safe_open

    from hubkit.models.io import decode_metadata

    with safe_open(str(path), "pt") as f:
        return decode_metadata(f.metadata() or {})


def write_unet_checkpoint(out: Path, state: Mapping[str, torch.Tensor], metadata: Mapping[str, Any]) -> Path:
    """Write ``state`` as a UNet state dict with ``metadata``; return the ``.safetensors`` path.

    ``out`` is a folder (``out/unet.safetensors`` + ``out/hubkit.json``) unless it ends in ``.safetensors``,
    in which case only that file is written (metadata in its header).
    """
    from safetensors.torch import save

    out = Path(out)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in sorted(state.items())}
    meta = dict(metadata)
    data = save(tensors, metadata=header_metadata(meta))
    if out.suffix == ".safetensors":
        write_bytes(out, data)
        return out
    out.mkdir(parents=True, exist_ok=True)
    weights = out / UNET_FILE
    write_bytes(weights, data)
    atomic_write_json(out / META_FILE, meta)
    return weights


def base_metadata(method: str, spec: ConceptSpec, base: Base, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "method": method,
        "concept": spec.name,
        "keywords": list(spec.keywords),
        "base": Path(base.source).name if base.source != "<in-memory>" else base.source,
        "hubkit_version": _hubkit_version(),
    }
    if spec.category:
        meta["category"] = spec.category
    meta.update(extra)
    return meta


def _hubkit_version() -> str:
    try:
        from importlib.metadata import version

        return version("hubkit")
    except Exception:  # noqa: BLE001 - not installed (running from a checkout)
        return "0+unknown"


def set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(int(threads))


# --------------------------------------------------------------------------------------------
# CLI helpers shared by the method modules
# --------------------------------------------------------------------------------------------
def add_common_arguments(parser, *, out_help: str) -> None:
    from hubkit.errors import ConfigError
    from hubkit.worlds import WORLDS, default_world

    try:
        world = default_world()
    except ConfigError:  # no world installed: --base must be given
        world = None
    worlds = WORLDS.names()
    if world is not None:
        parser.add_argument("--base", type=Path, default=world.base_model,
                            help=f"Stable Diffusion 1.x diffusers folder to unlearn from (default: the {world.name} "
                                 "world's base)")
    else:
        parser.add_argument("--base", type=Path, required=True, help="Stable Diffusion 1.x diffusers folder to unlearn from")
    parser.add_argument("--concept", action="append", required=True,
                        help="concept to erase: a concept name a world knows (expands to its keywords, e.g. the micro "
                             "world's weapon -> weapon, knife, sword, axe, spear) or a keyword; repeat for several "
                             "keywords")
    parser.add_argument("--name", default=None, help="concept name recorded in the metadata (default: from --concept)")
    parser.add_argument("--out", type=Path, required=True, help=out_help)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    named = "".join(f"{w} = tuned on the {w} world, " for w in worlds)
    parser.add_argument("--preset", choices=("auto", *worlds, "paper"), default="auto",
                        help=f"defaults for the options left unset: {named}paper = the method's published settings "
                             "(HUB's); auto = the presets of the world whose base --base is, else paper")


def concept_arg(args) -> str | list[str]:
    return args.concept[0] if len(args.concept) == 1 else list(args.concept)


def cli_kwargs(args, method: str, options: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments for ``method`` from parsed CLI ``args``: the world's preset, then every option given.

    ``options`` maps argparse attribute names to keyword names; options left at ``None`` keep the preset's value
    (or the function's default).
    """
    from hubkit.worlds import WORLDS, world_for_base

    preset = getattr(args, "preset", "auto")
    if preset == "auto":
        world = world_for_base(args.base)
    elif preset == "paper":
        world = None
    else:
        world = WORLDS.get(preset)
    kwargs: dict[str, Any] = {}
    if world is not None and world.unlearning_presets is not None:
        concept = concept_arg(args) if getattr(args, "concept", None) else None
        kwargs.update(world.unlearning_presets(method, concept))
    for attr, key in options.items():
        value = getattr(args, attr, None)
        if value is not None:
            kwargs[key] = tuple(value) if isinstance(value, list) else value
    return kwargs
