"""SLD entry point: write the method config that ``--model`` accepts (no training: SLD acts at inference).

The pipeline itself is :class:`hubkit.models.sld.SLDPipeline`; this module only turns ``--concept`` into a
safety concept and writes ``OUT/sld.json`` (or ``OUT`` itself when it ends in ``.json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from hubkit.unlearn.common import resolve_concept
from hubkit.unlearn.registry import UNLEARNING, UnlearningMethod


def sld(base, concept: str | Sequence[str], out: Path, *, safety_concept: str | None = None,
        seed: int = 0, name: str | None = None, **params) -> Path:
    """Write the SLD method config for ``concept``; return the JSON file written.

    The safety concept defaults to the concept's keywords joined by ", " (``weapon`` -> "weapon, knife, sword,
    axe, spear"; HUB uses the target's name).  ``params`` override SLD-Medium (``sld_guidance_scale``,
    ``sld_warmup_steps`` / ``sld_warmup_fraction``, ``sld_threshold``, ``sld_momentum_scale``, ``sld_mom_beta``).
    ``base`` and ``seed`` are recorded only: SLD is deterministic and needs no base at this point.
    """
    from hubkit.models.sld import write_sld_config

    spec = resolve_concept(concept, name=name)
    meta = {"keywords": list(spec.keywords), "seed": seed, "lr": 0, "format": "method-config"}
    if spec.category:
        meta["category"] = spec.category
    if base is not None and not hasattr(base, "unet"):
        meta["base"] = Path(base).name
    return write_sld_config(Path(out), spec.name, safety_concept=safety_concept or ", ".join(spec.keywords),
                            metadata=meta, **params)


def add_arguments(parser) -> None:
    from hubkit.unlearn.common import add_common_arguments

    add_common_arguments(parser, out_help="folder (receives sld.json) or .json file to write")
    parser.add_argument("--safety-concept", default=None, help="text to steer away from (default: the keywords)")
    parser.add_argument("--sld-guidance-scale", type=float, default=None)
    parser.add_argument("--sld-warmup-steps", type=int, default=None, help="absolute warm-up steps (default: 20%% of the schedule)")
    parser.add_argument("--sld-warmup-fraction", type=float, default=None)
    parser.add_argument("--sld-threshold", type=float, default=None)
    parser.add_argument("--sld-momentum-scale", type=float, default=None)
    parser.add_argument("--sld-mom-beta", type=float, default=None)


def run(args) -> int:
    from hubkit.unlearn.common import cli_kwargs, concept_arg

    options = {k: k for k in ("sld_guidance_scale", "sld_warmup_steps", "sld_warmup_fraction", "sld_threshold",
                              "sld_momentum_scale", "sld_mom_beta")}
    out = sld(args.base, concept_arg(args), args.out, safety_concept=args.safety_concept, seed=args.seed,
              name=args.name, **cli_kwargs(args, "sld", options))
    print(out)
    return 0


UNLEARNING.register("sld", obj=UnlearningMethod(
    "sld", "SLD: write a safe-latent-diffusion method config (inference-time guidance)", sld, add_arguments, run))
