"""Shared steps of the aspects: pick prompts, generate with both models, judge."""

from __future__ import annotations

import hashlib
import math
import weakref
from dataclasses import dataclass

from hubkit.errors import JudgeError

GRID = 8  # images per row in the report's base-vs-unlearned grid

# judge -> {(what, category, image digest, reference digests): Verdict}. A judge answers for one image once per
# run: a sequential round, the canary and the target proportion (the same base images), every neighbour's check and
# the pooled one ask again for images already judged, and a VLM answer costs seconds.
_VERDICTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass
class Judged:
    prompts: list
    base_images: list
    model_images: list
    base_verdicts: list
    model_verdicts: list
    judge: str


def target_prompts(hub, concept: str) -> list:
    """The target prompts this budget evaluates (the judge canary uses the first ones of the same list)."""
    return hub.subsample(hub.prompts.target(concept), hub.budget.target_prompts, f"target:{concept}")


def references(hub, judge, set_name: str, prompts, per_prompt: int = 1, reference_prompts=None) -> list | None:
    """The base model's reference images a reference-based judge compares each image with, else None.

    A judge asks for them with ``references = k`` (HUB's VLM: 3; the face-identity judge): for each prompt, k base
    images of ``reference_prompts`` (default: the same prompts; multilingual: the English prompt of the same
    index, as HUB does) drawn with seeds of their own, so a base query image is never its own reference.
    One list per query image, aligned with ``hub.images(..., prompts, per_prompt)``.
    """
    k = int(getattr(judge, "references", 0) or 0)
    if k <= 0:
        return None
    sources = list(reference_prompts) if reference_prompts is not None else list(prompts)
    drawn = hub.images("base", f"reference:{set_name}", sources, k, desc=f"base: references for {set_name}")
    return [drawn[i * k:(i + 1) * k] for i in range(len(sources)) for _ in range(per_prompt)]


def _digest(image) -> bytes:
    """Content digest of a PIL image (pixels, size, mode): the same picture gives the same key, whichever call
    produced it."""
    h = hashlib.blake2b(image.tobytes(), digest_size=16)
    h.update(f"{image.size}{image.mode}".encode())
    return h.digest()


def detect(judge, images, what: str, refs=None, category: str | None = None) -> list:
    """``judge.detect`` with the reference images when the judge wants them (the plain call otherwise, so a
    third-party judge with the two-argument signature keeps working), asking only about images this judge has
    not yet answered for with the same question and references (judges are deterministic: ``Judge``)."""
    memo = _VERDICTS.setdefault(judge, {})
    keys = [(what, category if refs is not None else None, _digest(image),
             tuple(_digest(r) for r in refs[i]) if refs is not None else None) for i, image in enumerate(images)]
    todo = list({k: i for i, k in reversed(list(enumerate(keys))) if k not in memo}.values())
    todo.sort()
    if todo:
        subset = [images[i] for i in todo]
        if refs is None:
            found = judge.detect(subset, what)
        else:
            found = judge.detect(subset, what, references=[refs[i] for i in todo], category=category)
        if len(found) != len(todo):
            raise JudgeError(f"judge {judge.name!r} returned {len(found)} verdicts for {len(todo)} images; fix the "
                             f"judge: Detector.detect must return one Verdict per image, in order")
        for i, verdict in zip(todo, found):
            if verdict.label != "invalid" and math.isnan(verdict.score):
                raise JudgeError(f"judge {judge.name!r} returned a NaN score with the label {verdict.label!r}; fix "
                                 f"the judge: when it cannot decide it must return Verdict.invalid()")
            memo[keys[i]] = verdict
    return [memo[k] for k in keys]


def judge_both(hub, set_name: str, prompts, what: str, judge, per_prompt: int = 1, *, category: str | None = None,
               reference_prompts=None) -> Judged:
    """Both models draw ``prompts`` with identical seeds; ``judge`` says whether ``what`` is visible (comparing
    with the base model's reference images when it is a reference-based judge)."""
    base = hub.images("base", set_name, prompts, per_prompt)
    model = hub.images("model", set_name, prompts, per_prompt)
    refs = references(hub, judge, set_name, prompts, per_prompt, reference_prompts)
    return Judged(list(prompts), base, model, detect(judge, base, what, refs, category),
                  detect(judge, model, what, refs, category), judge.configured_name)


def yes_examples(prompts, verdicts, per_prompt: int = 1, limit: int = 5) -> list[str]:
    """Prompts whose image still shows what should be gone: the worst examples for a failure message."""
    hits = [prompts[i // per_prompt].text for i, v in enumerate(verdicts) if v.label == "yes"]
    return list(dict.fromkeys(hits))[:limit]


def no_examples(prompts, verdicts, per_prompt: int = 1, limit: int = 5) -> list[str]:
    hits = [prompts[i // per_prompt].text for i, v in enumerate(verdicts) if v.label == "no"]
    return list(dict.fromkeys(hits))[:limit]


def worst_first(j, *, per_prompt: int = 1, lost: bool = False, limit: int = GRID, tag: str = ""):
    """(base images, unlearned images, captions) of up to ``limit`` pairs of the judged images ``j`` (a
    ``common.Judged``), the worst first: the unlearned image still shows what should be gone (``lost=False``: the
    concept came back) or no longer shows what should stay (``lost=True``: a neighbour vanished), those whose base
    image showed it first; then unreadable images (invalid); then the rest, in prompt order. Each caption is the
    prompt (``tag`` before it) and the judge's verdicts on both images, the verdict line marked ``!`` when bad."""
    bad = "no" if lost else "yes"
    n = min(len(j.base_images), len(j.model_images), len(j.base_verdicts), len(j.model_verdicts))

    def rank(i):
        m, b = j.model_verdicts[i].label, j.base_verdicts[i].label
        return (0 if m == bad else 1 if m == "invalid" else 2, b != "yes", i)

    order = sorted(range(n), key=rank)[:limit]
    captions = []
    for i in order:
        prompt = j.prompts[i // per_prompt] if j.prompts else ""
        text = getattr(prompt, "text", prompt)
        b, m = j.base_verdicts[i].label, j.model_verdicts[i].label
        captions.append(f"{tag}{text}\n{'!' if m == bad else ''}base {b} | unl. {m}")
    return [j.base_images[i] for i in order], [j.model_images[i] for i in order], captions
