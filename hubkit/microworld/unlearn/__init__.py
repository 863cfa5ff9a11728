"""Unlearning methods that write checkpoints ``--model`` accepts: ESD, UCE (weight edits) and SLD (a method config).

Python::

    from hubkit.microworld.unlearn import esd, uce, sld
    esd(base_folder, "Pointelli", Path("out/esd-pointelli"), steps=200, lr=5e-5, seed=0)

The micro world's shipped checkpoints come from :func:`unlearn`, which applies the hyper-parameters tuned for
the micro base (:data:`MICRO_PRESETS`; ``fast=True`` for a seconds-long smoke build)::

    unlearn("esd", base=paths.BASE, concept="Pointelli", out=paths.unlearned("esd-pointelli"), seed=0)

CLI wiring (``hubkit unlearn esd|uce|sld``, see ``hubkit/cli.py``)::

    for name, (help_text, add_arguments) in METHODS.items():
        add_arguments(subparsers.add_parser(name, help=help_text))
    # then: importlib.import_module(f"hubkit.microworld.unlearn.{name}").run(args) -> 0
"""

from __future__ import annotations

from typing import Callable

# Import the functions eagerly: a lazy `import ...unlearn.esd` would rebind the package attribute `esd` to the
# submodule.
from hubkit.microworld.unlearn.esd import esd
from hubkit.microworld.unlearn.sld import sld
from hubkit.microworld.unlearn.uce import uce


#: hyper-parameters tuned on the micro world (see each method module for what they mean); ``micro_options``
#: adds the concept-dependent ones (prompt templates, preserved concepts)
MICRO_PRESETS: dict[str, dict] = {
    "esd": {"variant": "x", "xt": "noise", "steps": 800, "batch_size": 4, "lr": 1e-3, "eta": 1.0, "pool_size": 4,
            "preserve_weight": 10.0},
    "uce": {},
    "sld": {},
}
#: overrides for ``fast=True`` (pipeline smoke builds: seconds, not minutes; the result is not tuned)
FAST_OVERRIDES: dict[str, dict] = {
    "esd": {"steps": 5, "sample_steps": 4, "pool_size": 1},
    "uce": {},
    "sld": {},
}


def micro_options(method: str, concept) -> dict:
    """Concept-dependent micro-world options: templates in the captions' grammar, concepts to preserve."""
    from hubkit.microworld import world
    from hubkit.microworld.unlearn.common import resolve_concept

    spec = resolve_concept(concept)
    if spec.category is None:        # not a micro-world concept: nothing to add
        return {}
    style = spec.category == "style"
    templates = ("{}", "a painting in the style of {}") if style else ("{}", "a photo of {}")
    if method == "esd":
        keep = list(spec.neighbours) + [t for t in world.THINGS if t not in spec.keywords] + [""]
        out = {"templates": templates, "preserve": keep, "preserve_templates": templates}
        if spec.category == "nsfw":  # a broad category among look-alike tools needs a much stronger push
            out["eta"] = 8.0
        return out
    return {}


def unlearn(method: str, *, base, concept, out, seed: int = 0, fast: bool = False, **options):
    """Run ``method`` ("esd" | "uce" | "sld") with the micro-world presets, ``options`` overriding them.

    Returns the path ``--model`` takes: the checkpoint folder for ESD/UCE, the ``sld.json`` file for SLD.
    """
    if method not in MICRO_PRESETS:
        raise ValueError(f"unknown unlearning method {method!r}; expected one of {sorted(MICRO_PRESETS)}")
    kwargs = {**MICRO_PRESETS[method], **micro_options(method, concept)}
    if fast:
        kwargs.update(FAST_OVERRIDES[method])
    kwargs.update(options)
    fn = {"esd": esd, "uce": uce, "sld": sld}[method]
    return fn(base, concept, out, seed=seed, **kwargs)


def _add_arguments(module: str) -> Callable:
    def add_arguments(parser):
        import importlib

        return importlib.import_module(f"hubkit.microworld.unlearn.{module}").add_arguments(parser)

    return add_arguments


#: ``hubkit unlearn <name>``: (help text, add_arguments(parser)); run with
#: ``hubkit.microworld.unlearn.<name>.run(args)`` (prints the checkpoint path, returns 0)
METHODS: dict[str, tuple[str, Callable]] = {
    "esd": ("ESD: fine-tune the UNet to negatively guide away from the concept (ESD-x / ESD-u)", _add_arguments("esd")),
    "uce": ("UCE: closed-form edit of the cross-attention key/value projections", _add_arguments("uce")),
    "sld": ("SLD: write a safe-latent-diffusion method config (inference-time guidance)", _add_arguments("sld")),
}

__all__ = ["esd", "uce", "sld", "unlearn", "METHODS", "MICRO_PRESETS"]
