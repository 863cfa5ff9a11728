"""``ringabell``: Ring-A-Bell (Tsai et al., ICLR 2024), a text-encoder-only, model-agnostic attack.

1. **Concept direction** ``c`` = mean over prompt pairs of ``E(prompt with concept) - E(same prompt
   without it)``, where ``E`` is the text encoder's full last hidden-state sequence (``[77, D]``, what
   SD-1.x's UNet is conditioned on), as in Ring-A-Bell's ``Get_Concept_Vector`` notebook.
2. **Target** for each output prompt: ``E(neutral prompt) + eta * c`` (``eta`` is the notebook's ``cof``).
3. **Discrete search**: a genetic algorithm over ``K`` token ids (``[BOS, t1..tK, EOS, PAD...]``)
   minimising the squared distance ``sum((E(prompt) - target) ** 2)`` over the whole sequence. It is the
   notebook's GA: truncation selection of the best half, single-point crossover with probability
   ``crossover_rate`` per parent (two children each), and a one-token mutation with probability
   ``mutation_rate`` per individual. Two deliberate differences: the best individual is never mutated
   (elitism, so the best distance never increases; the notebook mutates survivors in place), and tokens
   are drawn from the whole-word round-trip-safe vocabulary minus the concept's banned tokens (the
   notebook draws any id in ``[1, 49406)``), so the emitted text re-tokenizes to exactly the searched ids
   and never spells a banned keyword. Survivors keep their fitness instead of being re-encoded.

The search runs on **the model under test's** text encoder (``pipe.text_encoder``), and the concept direction
comes from a **reference** encoder: in the suite, the base model's (``reference=``, Ring-A-Bell's transfer
setting, where the vector comes from SD-1.4). A text-encoder edit such as AdvUnlearn's, or one that only
overwrites the concept name's token embeddings, then cannot erase the direction it is attacked along; without
``reference`` the direction comes from the model under test itself. It reads only the text encoder and
tokenizer (``reads``), so its result is shared by every UNet-only checkpoint of one base.

A prompt folder's manifest may set budget keys for its world (``[attacks.ringabell]``, read by the suite), as the
paper tunes ``eta`` and ``K`` per concept. The micro world sets ``eta = 10``, ``push = "target"`` and a
``vocabulary``: its text encoder was trained from scratch on the captions' ~700 words, so the other rows of CLIP's
49,408 token ids are untrained noise, where every row of a real CLIP means something; with the notebook's settings
the search reached Zorbo in 0.125 of the base's images, with the world's in 0.90 (``docs/base-experiments.md``).

Budgets (``full`` = the notebook: population 200, 3000 generations, K = 16, eta = 3, mutation 0.25,
crossover 0.5; HUB used 1000 prompts per concept). Cost is about ``population * generations * 3/4``
text-encoder passes per prompt: on the micro model, ``ci`` (48 prompts, 96 x 300) measured 70 s per concept on
two CPU cores (17 s per 12 prompts); real SD's CLIP-L is some 100x slower per sequence: ``full`` is a GPU
setting.
"""

from __future__ import annotations

import re
import time
from typing import Sequence

import torch

from hubkit.attacks._text import (
    allowed_token_ids,
    banned_token_ids,
    encode_ids,
    frozen,
    ids_to_text,
    padded_ids,
    prompt_token_ids,
    tokenize,
    unwrap_pipeline,
)
from hubkit.attacks.registry import ATTACKS, Attack, AttackResult, derived_seed
from hubkit.errors import ConfigError


def strip_concept(prompt: str, keywords: Sequence[str], replacement: str = "") -> str:
    """``prompt`` with every keyword (case-insensitive, whole words, longest first) replaced by
    ``replacement`` and the whitespace tidied: the "without" half of a Ring-A-Bell pair."""
    out = prompt
    for kw in sorted((str(k) for k in keywords if str(k).strip()), key=len, reverse=True):
        out = re.sub(r"(?<!\w)" + re.escape(kw.strip()) + r"(?!\w)", replacement, out, flags=re.IGNORECASE)
    out = re.sub(r"\s+([,.;:!?])", r"\1", out)
    return re.sub(r"\s+", " ", out).strip(" ,")


def make_pairs(prompts: Sequence[str], keywords: Sequence[str], replacement: str = "") -> list[tuple[str, str]]:
    """``(prompt, strip_concept(prompt))`` for every prompt that mentions a keyword."""
    pairs = []
    for p in prompts:
        q = strip_concept(p, keywords, replacement)
        if q != re.sub(r"\s+", " ", p).strip(" ,"):
            pairs.append((p, q))
    return pairs


@torch.no_grad()
def concept_direction(text_encoder, tokenizer, pairs: Sequence[tuple[str, str]]) -> torch.Tensor:
    """Ring-A-Bell's concept vector: mean of ``E(with) - E(without)`` over ``pairs`` (``[L, D]``)."""
    if not pairs:
        raise ConfigError("ringabell needs at least one (prompt with concept, prompt without it) pair")
    with_ids = tokenize(tokenizer, [a for a, _ in pairs])
    without_ids = tokenize(tokenizer, [b for _, b in pairs])
    return (encode_ids(text_encoder, with_ids) - encode_ids(text_encoder, without_ids)).mean(0)


@ATTACKS.register("ringabell", "ring-a-bell", "rab")
class RingABell(Attack):
    description = "Ring-A-Bell: GA token search towards neutral + eta * concept direction in text-encoder space"
    inputs = ("pairs", "keywords", "reference", "vocabulary")
    reads = ("text_encoder", "tokenizer")
    BUDGETS = {
        "smoke": {"prompts": 2, "population": 16, "generations": 8, "length": 16, "eta": 3.0,
                  "mutation_rate": 0.25, "crossover_rate": 0.5, "push": "neutral", "vocabulary": ""},
        "ci": {"prompts": 48, "population": 96, "generations": 300, "length": 16, "eta": 3.0,
               "mutation_rate": 0.25, "crossover_rate": 0.5, "push": "neutral", "vocabulary": ""},
        "full": {"prompts": 1000, "population": 200, "generations": 3000, "length": 16, "eta": 3.0,
                 "mutation_rate": 0.25, "crossover_rate": 0.5, "push": "neutral", "vocabulary": ""},
    }
    COST_KEYS = ("prompts", "population", "generations")

    def run(
        self,
        model,
        concept: str,
        *,
        pairs: Sequence[tuple[str, str]],
        keywords: Sequence[str] = (),
        base_prompts: Sequence[str] | None = None,
        reference=None,
        vocabulary: Sequence[str] | None = None,
        batch_size: int = 256,
    ) -> AttackResult:
        """Find ``budget["prompts"]`` prompts of ``budget["length"]`` tokens for ``concept``.

        ``model``: the pipeline (or ``LoadedModel``) under test; only its tokenizer and text encoder are used.
        ``pairs``: ``(prompt with the concept, the same prompt without it)``, e.g. ``make_pairs(target
        prompts, keywords)``. ``keywords``: the concept's words; their tokens are banned from the search.
        ``base_prompts``: the prompts whose embeddings are pushed along the direction (default: the
        neutral "without" halves of ``pairs``), cycled when fewer than the prompts asked for. Ring-A-Bell's
        notebook pushes the unsafe I2P prompts themselves; pass the target prompts for that variant.
        ``reference``: a pipeline whose text encoder computes the direction (default: ``model``'s).
        ``vocabulary``: words; the search draws only the whole-word tokens they are spelled with (default: the
        tokenizer's whole vocabulary, as the notebook). Required when the budget names a ``vocabulary`` file.

        Budget keys beyond the notebook's numbers: ``push`` = ``"neutral"`` pushes the pairs' "without" halves
        along the direction, ``"target"`` the "with" halves (the prompts that name the concept, as the notebook
        pushes the unsafe I2P prompts); ``vocabulary`` = the name of the word list the suite hands over as
        ``vocabulary`` (``""``: none).
        """
        t0 = time.perf_counter()
        pipe = unwrap_pipeline(model)
        tok, enc = pipe.tokenizer, pipe.text_encoder
        b = self.budget
        n, pop_size, gens, length = int(b["prompts"]), int(b["population"]), int(b["generations"]), int(b["length"])
        if min(n, pop_size, gens, length) < 1 or pop_size < 2:
            raise ConfigError(f"ringabell budget needs prompts, generations, length >= 1 and population >= 2: {b}")
        if length > tok.model_max_length - 2:
            raise ConfigError(f"ringabell length {length} exceeds the tokenizer's {tok.model_max_length - 2} tokens")
        pairs = [(str(a), str(c)) for a, c in pairs]
        push = str(b.get("push", "neutral"))
        if push not in ("neutral", "target"):
            raise ConfigError(f"ringabell budget key push is {push!r}; use 'neutral' or 'target'")
        bases = list(base_prompts) if base_prompts else [a if push == "target" else c for a, c in pairs]
        if not bases:
            raise ConfigError("ringabell needs base prompts or pairs")
        if b.get("vocabulary") and vocabulary is None:
            raise ConfigError(f"ringabell's budget names the vocabulary {b['vocabulary']!r} but no words were passed "
                              f"as vocabulary=")
        banned = banned_token_ids(tok, keywords)
        allowed = allowed_token_ids(tok, banned, within=None if vocabulary is None else list(vocabulary))

        ref_pipe = unwrap_pipeline(reference) if reference is not None else pipe
        with frozen(enc, ref_pipe.text_encoder):
            direction = concept_direction(ref_pipe.text_encoder, ref_pipe.tokenizer, pairs)
            base_emb = encode_ids(enc, tokenize(tok, bases))
            prompts, losses, per_prompt = [], [], []
            from tqdm.auto import tqdm

            bar = tqdm(total=n * gens, desc=f"ringabell {concept}", disable=not self.progress, leave=False)
            try:
                for i in range(n):
                    target = base_emb[i % len(bases)] + float(b["eta"]) * direction
                    gen = torch.Generator().manual_seed(derived_seed("ringabell", self.seed, concept, i))
                    best, best_loss, info = self._search(enc, tok, target, allowed, gen, bar, batch_size)
                    text = ids_to_text(tok, best.tolist())
                    # The emitted text is what the suite renders: score exactly that (it round-trips by
                    # construction; if a tokenizer ever re-merges, report the re-tokenized distance).
                    emitted = prompt_token_ids(tok, text)
                    if emitted != best.tolist():
                        best_loss = self._fitness(enc, tok, torch.tensor([emitted[:length]]), target, batch_size)[0].item()
                    prompts.append(text)
                    losses.append(float(best_loss))
                    per_prompt.append({"base_prompt": bases[i % len(bases)], "token_ids": best.tolist(),
                                       "roundtrip": emitted == best.tolist(), **info})
            finally:
                bar.close()
        return AttackResult(
            attack=self.name,
            concept=concept,
            prompts=prompts,
            losses=losses,
            details={
                "objective": "sum of squared differences between the prompt's and the target's [77, D] text-encoder "
                             "hidden states (target = E(neutral) + eta * concept direction)",
                "search": "genetic algorithm (Ring-A-Bell notebook) with elitism",
                "budget": dict(b),
                "seed": self.seed,
                "num_pairs": len(pairs),
                "direction_norm": float(direction.norm()),
                "direction_encoder": "reference" if reference is not None else "model under test",
                "banned_tokens": len(banned),
                "pushed": push,
                "vocabulary": int(len(allowed)),
                "per_prompt": per_prompt,
            },
            seconds=time.perf_counter() - t0,
        )

    @staticmethod
    def _fitness(enc, tok, pop: torch.Tensor, target: torch.Tensor, batch_size: int) -> torch.Tensor:
        out = encode_ids(enc, padded_ids(tok, pop), batch_size=batch_size)
        return ((out - target.to(out.device)) ** 2).sum(dim=(1, 2)).cpu()

    def _search(self, enc, tok, target, allowed, gen, bar, batch_size):
        b = self.budget
        pop_size, gens, length = int(b["population"]), int(b["generations"]), int(b["length"])
        mr, cr = float(b["mutation_rate"]), float(b["crossover_rate"])
        nv = len(allowed)
        pop = allowed[torch.randint(nv, (pop_size, length), generator=gen)]
        fit = self._fitness(enc, tok, pop, target, batch_size)
        random_loss = float(fit.mean())
        history = []
        log_every = max(1, gens // 20)
        for g in range(gens):
            order = torch.argsort(fit, stable=True)[: max(pop_size // 2, 1)]
            pop, fit = pop[order], fit[order]
            if g % log_every == 0 or g == gens - 1:
                history.append((g, float(fit[0])))
            bar.update(1)
            if g == gens - 1:
                break
            # crossover: each survivor, with probability cr, pairs with a random survivor at a random point
            m = len(pop)
            do = torch.rand(m, generator=gen) < cr
            partner = torch.randint(m, (m,), generator=gen)
            point = torch.randint(1, max(length, 2), (m,), generator=gen)
            first = torch.arange(length)[None, :] < point[:, None]
            a, p2, f = pop[do], pop[partner[do]], first[do]
            children = torch.cat([torch.where(f, a, p2), torch.where(f, p2, a)])
            pop = torch.cat([pop, children])
            fit = torch.cat([fit, torch.full((len(children),), float("nan"))])
            # mutation: one random position of a random allowed token; never the current best (index 0)
            mut = torch.rand(len(pop), generator=gen) < mr
            pos = torch.randint(length, (len(pop),), generator=gen)
            val = allowed[torch.randint(nv, (len(pop),), generator=gen)]
            mut[0] = False
            rows = mut.nonzero().flatten()
            pop[rows, pos[rows]] = val[rows]
            fit[rows] = float("nan")
            need = torch.isnan(fit).nonzero().flatten()
            if len(need):
                fit[need] = self._fitness(enc, tok, pop[need], target, batch_size)
        return pop[0].clone(), float(fit[0]), {"random_loss": random_loss, "history": history}
