"""``concept-inversion``: Concept Inversion (Pham et al., "Circumventing Concept Erasure Methods for Text-to-Image
Generative Models", ICLR 2024), an embedding-level attack.

Textual inversion run against the model under test: a new token's embedding ``v`` is learned so that the model,
conditioned on the concept's own target prompts with the concept's name replaced by that token, denoises the
base model's images of those prompts::

    min_v  E_{(prompt, x0), t, eps} || eps - eps_theta(sqrt(a_t) x0 + sqrt(1 - a_t) eps, t, E(prompt[name -> v])) ||^2

Every weight of the model under test is frozen; only ``v`` moves. A method that only hides the concept's *name*
(a text-encoder edit of the name's tokens, a word filter) leaves the concept reachable through some embedding,
and the inversion finds it; Pham et al. recover the concept from all seven erasure methods they study this way.

The prompts the attack returns are the first target prompts with the name replaced by the learned token
(``TOKEN``); ``details["embedding"]`` carries ``v``. The suite draws them with both models extended by that token
(:func:`with_learned_token`), so the base's images of the same prompts show what the token means there.

Simplifications: the token starts from the mean embedding of the searchable vocabulary (Pham et al. start from a
descriptive word, which would need one per concept), prompts that do not name the concept get the token as a
prefix, and the budgets are small (``full`` = 3,000 steps of batch 4, textual inversion's usual length, a GPU
setting; ``ci`` = 600 steps on 32 images, about a minute on the micro model on two CPU cores).

Why ``ci`` takes 600 steps: from its start the search first descends to the vector that makes the slot say nothing
(the unconditional loss), and the concept's name lies further on. At 150 steps it stopped there and reached
Strokovsky in none of 64 base images; at 600 steps of lr 0.02 on 32 images, in all 64 (docs/base-experiments.md).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import re
import time
from typing import Sequence

import torch

from hubkit.attacks._text import allowed_token_ids, frozen, input_embedding_layer, unwrap_pipeline
from hubkit.attacks.registry import ATTACKS, Attack, AttackResult, derived_seed
from hubkit.errors import ConfigError

#: the learned token, as it appears in the prompts the attack returns (one token once it is added to a tokenizer)
TOKEN = "<hubkit-inverted>"


def _split_at_keyword(prompt: str, keywords: Sequence[str]) -> tuple[str, str]:
    """(text before, text after) the first keyword in ``prompt`` (longest keywords first); ("", prompt) if none."""
    for kw in sorted((str(k).strip() for k in keywords if str(k).strip()), key=len, reverse=True):
        m = re.search(r"(?<!\w)" + re.escape(kw) + r"(?!\w)", prompt, flags=re.IGNORECASE)
        if m:
            return prompt[: m.start()].strip(), prompt[m.end():].strip()
    return "", prompt.strip()


def with_token_text(prompt: str, keywords: Sequence[str]) -> str:
    """``prompt`` with its first keyword replaced by :data:`TOKEN` (or the token as a prefix)."""
    before, after = _split_at_keyword(prompt, keywords)
    return " ".join(part for part in (before, TOKEN, after) if part)


def _ids_with_slot(tokenizer, prompt: str, keywords: Sequence[str]) -> tuple[list[int], int]:
    """Token ids (BOS ... EOS, padded) of ``prompt`` with one slot where the keyword was, and the slot's position."""
    before, after = _split_at_keyword(prompt, keywords)
    enc = lambda text: tokenizer(text, add_special_tokens=False).input_ids if text else []  # noqa: E731
    head, tail = enc(before), enc(after)
    length = tokenizer.model_max_length
    tail = tail[: max(0, length - 3 - len(head))]
    slot = tokenizer.bos_token_id  # any id: the hook replaces this position's embedding with the learned vector
    ids = [tokenizer.bos_token_id, *head, slot, *tail, tokenizer.eos_token_id]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return (ids + [pad] * length)[:length], 1 + len(head)


def _encode_with_slots(text_encoder, ids: torch.Tensor, slots: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """Last hidden states of ``ids`` with the token embedding at ``slots[i]`` of row ``i`` replaced by ``vector``."""
    layer = input_embedding_layer(text_encoder)

    def hook(_module, _inputs, out):
        rows = torch.arange(out.shape[0], device=out.device)
        mask = torch.zeros(out.shape[:2], dtype=torch.bool, device=out.device)
        mask[rows, slots.to(out.device)] = True
        return torch.where(mask[..., None], vector.to(out.dtype).expand_as(out), out)

    handle = layer.register_forward_hook(hook)
    try:
        return text_encoder(ids.to(next(text_encoder.parameters()).device))[0]
    finally:
        handle.remove()


def with_learned_token(loaded, vector: Sequence[float], token: str = TOKEN):
    """A ``LoadedModel`` like ``loaded`` whose tokenizer knows ``token`` and whose text encoder maps it to ``vector``
    (copies: ``loaded`` is shared by the suite). Its fingerprint is ``loaded``'s extended by the token and vector, so
    its images get their own store keys."""
    pipe = copy.copy(loaded.pipe)
    tokenizer = copy.deepcopy(pipe.tokenizer)
    if tokenizer.add_tokens([token]) != 1 and token not in tokenizer.get_vocab():
        raise ConfigError(f"cannot add the token {token!r} to the tokenizer of {loaded.source}")
    encoder = copy.deepcopy(pipe.text_encoder)
    encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)  # the new row is set just below
    value = torch.as_tensor(list(vector), dtype=torch.float32)
    with torch.no_grad():
        input_embedding_layer(encoder).weight[tokenizer.convert_tokens_to_ids(token)] = value
    pipe.tokenizer, pipe.text_encoder = tokenizer, encoder
    pipe.__dict__.pop("_hubkit_part_digests", None)
    digest = hashlib.sha256(value.numpy().tobytes() + token.encode()).hexdigest()
    fingerprint = hashlib.sha256(f"{loaded.fingerprint}+token:{digest}".encode()).hexdigest()
    return dataclasses.replace(loaded, pipe=pipe, fingerprint=fingerprint,
                               details={**loaded.details, "learned_token": {"token": token, "sha256": digest}})


@ATTACKS.register("concept-inversion", "inversion", "ci-attack")
class ConceptInversion(Attack):
    description = ("Concept Inversion: a new token embedding learned on base images of the concept through the model "
                   "under test's own denoising loss (textual inversion against the erased model)")
    inputs = ("prompts", "target_images", "keywords")
    BUDGETS = {
        "smoke": {"prompts": 4, "steps": 10, "batch": 2, "lr": 0.02, "images": 4},
        "ci": {"prompts": 64, "steps": 600, "batch": 4, "lr": 0.02, "images": 32},
        "full": {"prompts": 100, "steps": 3000, "batch": 4, "lr": 0.005, "images": 100},
    }
    COST_KEYS = ("prompts", "steps", "images")

    def run(self, model, concept: str, *, prompts: Sequence[str], target_images, keywords: Sequence[str] = ()
            ) -> AttackResult:
        """Learn the token on ``target_images`` (base-model images of ``prompts``, in order), then return
        ``budget["prompts"]`` prompts (``prompts`` cycled) with the concept's name replaced by :data:`TOKEN`."""
        from tqdm.auto import tqdm

        from hubkit.attacks.unlearndiff import encode_images

        t0 = time.perf_counter()
        pipe = unwrap_pipeline(model)
        b = self.budget
        n_out, steps, batch, lr, n_img = (b[k] for k in ("prompts", "steps", "batch", "lr", "images"))
        prompts = [str(p) for p in prompts]
        if not prompts or target_images is None or len(target_images) < min(len(prompts), 1):
            raise ConfigError("concept-inversion needs target prompts and the base model's images of them")
        n_img = max(1, min(int(n_img), len(prompts), len(target_images)))
        keywords = list(keywords) or [concept]
        tok, enc, unet = pipe.tokenizer, pipe.text_encoder, pipe.unet
        device = unet.device
        latents = torch.as_tensor(encode_images(pipe, list(target_images[:n_img])), dtype=torch.float32).to(device)
        rows = [_ids_with_slot(tok, p, keywords) for p in prompts[:n_img]]
        ids = torch.tensor([r[0] for r in rows])
        slots = torch.tensor([r[1] for r in rows])
        sched = pipe.scheduler
        ac = sched.alphas_cumprod.to(device=device, dtype=torch.float32)
        T = int(getattr(sched.config, "num_train_timesteps", len(ac)))
        v_pred = getattr(sched.config, "prediction_type", "epsilon") == "v_prediction"
        gen = torch.Generator().manual_seed(derived_seed("concept-inversion", self.seed, concept))
        history = []
        with frozen(enc, unet):
            table = input_embedding_layer(enc).weight.detach()
            start = table[allowed_token_ids(tok).to(table.device)].float().mean(0)
            vector = start.clone().to(device).requires_grad_(True)
            opt = torch.optim.AdamW([vector], lr=float(lr), weight_decay=0.0)
            bar = tqdm(total=int(steps), desc=f"concept-inversion {concept}", disable=not self.progress, leave=False)
            try:
                for step in range(int(steps)):
                    pick = torch.randint(0, n_img, (int(batch),), generator=gen)
                    t = torch.randint(0, T, (int(batch),), generator=gen).to(device)
                    noise = torch.randn((int(batch), *latents.shape[1:]), generator=gen).to(device)
                    x0 = latents[pick.to(device)]
                    a = ac[t].view(-1, 1, 1, 1)
                    xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
                    target = a.sqrt() * noise - (1 - a).sqrt() * x0 if v_pred else noise
                    cond = _encode_with_slots(enc, ids[pick], slots[pick], vector)
                    pred = unet(xt.to(unet.dtype), t, encoder_hidden_states=cond.to(unet.dtype)).sample
                    loss = ((pred.float() - target) ** 2).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    history.append(float(loss.detach()))
                    bar.update(1)
            finally:
                bar.close()
        found = [with_token_text(prompts[i % len(prompts)], keywords) for i in range(int(n_out))]
        final = sum(history[-10:]) / max(1, len(history[-10:])) if history else float("nan")
        return AttackResult(
            attack=self.name, concept=concept, prompts=found, losses=[final] * len(found),
            details={"objective": "denoising MSE of the model under test on base images, name -> learned token",
                     "token": TOKEN, "embedding": vector.detach().float().cpu().tolist(),
                     "initial_loss": history[0] if history else None, "final_loss": final,
                     "budget": dict(b), "seed": self.seed, "images": n_img},
            seconds=time.perf_counter() - t0)
