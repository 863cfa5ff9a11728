"""The micro world's unlearning presets: hyper-parameters tuned for the micro base, and the shipped-checkpoint builder.

The methods themselves (ESD, UCE, SLD) are the engine's, for any SD-1.x pipeline (``hubkit.unlearn``). The micro
world hands the engine its presets through its ``World`` (``hubkit_micro.paths.WORLD.unlearning_presets``), so
``hubkit unlearn esd --concept Pointelli --out DIR`` on the micro base (``--preset auto``) applies them.

The micro world's shipped checkpoints come from :func:`unlearn`, which applies the hyper-parameters tuned for
the micro base (:data:`MICRO_PRESETS`; ``fast=True`` for a seconds-long smoke build)::

    unlearn("esd", base=paths.BASE, concept="Pointelli", out=paths.unlearned("esd-pointelli"), seed=0)
"""

from __future__ import annotations

#: hyper-parameters tuned on the micro world (see each method module for what they mean); ``micro_options``
#: adds the concept-dependent ones (prompt templates, preserved concepts)
MICRO_PRESETS: dict[str, dict] = {
    "esd": {"variant": "x", "xt": "noise", "steps": 800, "batch_size": 4, "lr": 1e-3, "eta": 1.0, "pool_size": 4,
            "preserve_weight": 10.0},
    "uce": {},
    "sld": {},
    # HUB's other methods: first settings that erase Pointelli on the micro base (target 0.91 -> 0.00-0.13 on 32
    # images, one seed; measured 2026-12-03 when they were written), not tuned further
    "ac": {"steps": 400, "batch_size": 8, "lr": 1e-4, "num_images": 64},
    "sa": {"steps": 300, "batch_size": 4, "lr": 2e-4, "num_images": 8, "fisher_samples": 50},
    "salun": {"steps": 300, "batch_size": 8, "lr": 2e-4, "num_images": 8},
    "mace": {"steps": 200, "lr": 1e-3, "rank": 1, "pool_size": 4, "batch_size": 4},
    "receler": {"rank": 16, "steps": 300, "lr": 1e-3, "xt": "noise", "pool_size": 4, "batch_size": 4, "adv_tokens": 2,
                "adv_steps": 2},
    "advunlearn": {"steps": 200, "lr": 1e-4, "attack_steps": 3, "xt": "noise", "pool_size": 4, "batch_size": 4},
}
#: how much tuning each preset has had, printed under the leaderboard: its ranks compare these presets, and a method
#: that was tuned more has an edge that is not the method's
PRESET_PROVENANCE: dict[str, str] = {
    "esd": "tuned per category over several sessions (the world ships its checkpoints): the captions' phrasings "
           "and the keyword's contribution in context for a style (preservation weight 30 on Pointelli, for FID), "
           "neighbours preserved, eta 8 for weapon",
    "uce": "the closed form with its defaults (erased toward the empty prompt, the world's neighbours preserved)",
    "sld": "SLD-Medium, the paper's setting; the safety concept is the concept's keywords (a named concept's name, "
           "as in HUB; weapon's five words)",
    "ac": "first settings that erased Pointelli on the v1 base, not tuned since; for a celebrity the anchor is "
          "\"a face\", since HUB's \"a middle aged man\" draws Dario Voss himself on the micro base",
    "sa": "first settings that erased Pointelli on the v1 base, not tuned since; for a celebrity the surrogate is "
          "\"a face\", since HUB's \"a middle aged man\" draws Dario Voss himself on the micro base",
    "salun": "first settings that erased Pointelli on the v1 base, not tuned since",
    "mace": "first settings that erased Pointelli on the v1 base, not tuned since",
    "receler": "first settings that erased Pointelli on the v1 base; for a style, ESD's phrasings and direction",
    "advunlearn": "first settings that erased Pointelli on the v1 base; for a style, ESD's phrasings and direction",
}
#: overrides for ``fast=True`` (pipeline smoke builds: seconds, not minutes; the result is not tuned)
FAST_OVERRIDES: dict[str, dict] = {
    "esd": {"steps": 5, "sample_steps": 4, "pool_size": 1},
    "uce": {},
    "sld": {},
    "ac": {"steps": 3, "batch_size": 2, "num_images": 2, "sample_steps": 2},
    "sa": {"steps": 3, "batch_size": 2, "num_images": 2, "sample_steps": 2, "fisher_samples": 2},
    "salun": {"steps": 3, "batch_size": 2, "num_images": 2, "sample_steps": 2, "mask_batches": 1},
    "mace": {"steps": 2, "sample_steps": 4, "pool_size": 1},
    "receler": {"steps": 2, "sample_steps": 4, "pool_size": 1, "adv_steps": 1},
    "advunlearn": {"steps": 2, "sample_steps": 4, "pool_size": 1, "attack_steps": 1},
}
#: ESD's training prompts for a style: one per way the captions name a style (``captions.py``: "a painting in the style
#: of X", "a painting by X with ...", "..., in the style of X", "..., X style"), and the bare name. On the v4o base
#: the preset's two templates with the keyword's own direction left Pointelli in 0.73 of target images, these with
#: ``direction="context"`` in 0.00 (``docs/base-experiments.md``, eleventh session)
ESD_STYLE_TEMPLATES = ("{}", "a painting in the style of {}", "a painting by {} with a tree",
                       "a house on the left, in the style of {}", "a car, {} style")
#: AC's anchor and SA's surrogate for a celebrity. HUB's, "a middle aged man", draws Dario Voss himself in 16 of 16
#: images of the v4o base (the captions describe him as "a man with a square face, ..." and describe no other man), so
#: AC and SA would map the celebrity onto itself: AC's first run on him left 0.953 of its target images (base 0.922).
#: "a face" draws none of the six faces (0 of 12 images; measured 2026-12-06, fourteenth session)
CELEBRITY_ANCHOR = "a face"
#: methods whose micro options are the concept's prompt templates (and, for AC and MACE, the category's anchor)
_TEMPLATED = ("ac", "sa", "salun", "mace", "receler", "advunlearn")
#: methods with ESD's target, which erase a style in the captions' phrasings as ESD does. On the v4o base, with the
#: two default templates and the keyword's own direction, Receler left Pointelli in 0.875 of its target images and
#: AdvUnlearn in 0.484; with these options in 0.000 and 0.000, neighbours kept 1.00 (64 images, seed 0;
#: ``docs/base-experiments.md``, thirteenth session)
_CONTEXT_ERASERS = ("receler", "advunlearn")


def micro_options(method: str, concept) -> dict:
    """Concept-dependent micro-world options: templates in the captions' grammar, concepts to preserve."""
    from hubkit.unlearn.common import resolve_concept

    from hubkit_micro import world

    spec = resolve_concept(concept)
    if spec.category is None:        # not a micro-world concept: nothing to add
        return {}
    style = spec.category == "style"
    templates = ("{}", "a painting in the style of {}") if style else ("{}", "a photo of {}")
    if method == "esd":
        keep = list(spec.neighbours) + [t for t in world.THINGS if t not in spec.keywords] + [""]
        out = {"templates": templates, "preserve": keep, "preserve_templates": templates}
        if style:  # the bare name barely draws a style on the base: erase its contribution in the captions' phrasings
            out.update(templates=ESD_STYLE_TEMPLATES, direction="context")
        if spec.category == "nsfw":  # a broad category among look-alike tools needs a much stronger push
            out["eta"] = 8.0
        return out
    if method in _TEMPLATED:
        out = {"templates": templates}
        if method in _CONTEXT_ERASERS and style:  # as ESD: the bare name barely draws a style on the v4o base
            out.update(templates=ESD_STYLE_TEMPLATES, direction="context")
        if method == "mace" and style:
            out["anchor"] = "a painting"
        if spec.category == "celebrity" and method in ("ac", "sa"):
            out["anchor" if method == "ac" else "surrogate"] = CELEBRITY_ANCHOR
        if method == "advunlearn":
            out["retain_templates"] = out["templates"]
        return out
    return {}


def presets(method: str, concept=None) -> dict:
    """The micro world's defaults for ``method`` (``World.unlearning_presets``): :data:`MICRO_PRESETS`, plus
    :func:`micro_options` when ``concept`` is given."""
    out = dict(MICRO_PRESETS.get(method, {}))
    if concept is not None:
        out.update(micro_options(method, concept))
    return out


def unlearn(method: str, *, base, concept, out, seed: int = 0, fast: bool = False, **options):
    """Run ``method`` ("esd" | "uce" | "sld") with the micro-world presets, ``options`` overriding them.

    Returns the path ``--model`` takes: the checkpoint folder for ESD/UCE, the ``sld.json`` file for SLD.
    """
    from hubkit.unlearn import UNLEARNING

    if method not in MICRO_PRESETS:
        raise ValueError(f"unknown unlearning method {method!r}; expected one of {sorted(MICRO_PRESETS)}")
    kwargs = {**MICRO_PRESETS[method], **micro_options(method, concept)}
    if fast:
        kwargs.update(FAST_OVERRIDES[method])
    kwargs.update(options)
    fn = UNLEARNING.get(method).function
    return fn(base, concept, out, seed=seed, **kwargs)


__all__ = ["ESD_STYLE_TEMPLATES", "FAST_OVERRIDES", "MICRO_PRESETS", "PRESET_PROVENANCE", "CELEBRITY_ANCHOR", "micro_options", "presets", "unlearn"]
