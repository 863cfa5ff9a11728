"""Concept inversion (Pham et al., ICLR 2024): a token embedding learned through the model under test's own
denoising loss, drawn by both models extended with that token."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from hubkit.attacks import ATTACKS
from hubkit.attacks.inversion import TOKEN, with_learned_token, with_token_text
from hubkit.generate import ImageRequest, generate
from hubkit.settings import GenerationSettings

FAST = GenerationSettings(steps=2, height=32, width=32)


@dataclass
class Loaded:
    pipe: object
    fingerprint: str = "tiny"
    source: str = "tiny"
    details: dict = field(default_factory=dict)


@pytest.fixture(scope="module")
def pipe():
    from hubkit.testing import tiny_pipeline

    return tiny_pipeline()


def test_the_name_is_replaced_by_the_token():
    assert with_token_text("a painting of a dog in the style of Van Gogh, at night", ["Van Gogh"]) == (
        f"a painting of a dog in the style of {TOKEN} , at night")
    assert with_token_text("a nude figure on a beach", ["nudity"]) == f"{TOKEN} a nude figure on a beach"


def test_inversion_learns_a_vector_deterministically(pipe):
    prompts = ["a painting of a cat in the style of Zorbo", "Zorbo, a house"]
    images = generate(pipe, [ImageRequest(p, seed=i) for i, p in enumerate(prompts)], FAST, 2, progress=False)
    weights = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    flags = [p.requires_grad for p in pipe.unet.parameters()]
    attack = ATTACKS.build("concept-inversion", budget={"level": "smoke", "steps": 12}, seed=3, progress=False)
    assert attack.reads is None  # it reads the whole model: every weight change re-runs it
    first = attack.run(pipe, "Zorbo", prompts=prompts, target_images=images, keywords=["Zorbo"])
    again = attack.run(pipe, "Zorbo", prompts=prompts, target_images=images, keywords=["Zorbo"])
    width = pipe.text_encoder.get_input_embeddings().weight.shape[1]
    assert len(first.details["embedding"]) == width and first.details["embedding"] == again.details["embedding"]
    assert all(TOKEN in p and "Zorbo" not in p for p in first.prompts) and len(first.prompts) == 4
    assert np.isfinite(first.details["final_loss"])
    # only the vector moved: the model's weights and trainable flags are as they were
    assert all(torch.equal(v, weights[k]) for k, v in pipe.unet.state_dict().items())
    assert [p.requires_grad for p in pipe.unet.parameters()] == flags


def test_a_learned_token_extends_a_copy_of_the_model(pipe):
    before = pipe.text_encoder.get_input_embeddings().weight.detach().clone()
    vector = [0.5] * before.shape[1]
    extended = with_learned_token(Loaded(pipe), vector)
    tok = extended.pipe.tokenizer
    assert TOKEN in tok.get_vocab() and TOKEN not in pipe.tokenizer.get_vocab()
    row = extended.pipe.text_encoder.get_input_embeddings().weight[tok.convert_tokens_to_ids(TOKEN)]
    assert torch.allclose(row, torch.full_like(row, 0.5))
    assert torch.equal(pipe.text_encoder.get_input_embeddings().weight, before)  # the shared model is unchanged
    assert extended.fingerprint != "tiny" and extended.fingerprint == with_learned_token(Loaded(pipe), vector).fingerprint
    assert extended.fingerprint != with_learned_token(Loaded(pipe), [0.4] * len(vector)).fingerprint
    # the token is one token, and it changes the picture
    assert len(tok(f"a {TOKEN} dog", add_special_tokens=False).input_ids) == len(tok("a x dog", add_special_tokens=False).input_ids)
    plain = generate(pipe, [ImageRequest("a dog", seed=1)], FAST, 1, progress=False)[0]
    same = generate(extended.pipe, [ImageRequest("a dog", seed=1)], FAST, 1, progress=False)[0]
    token = generate(extended.pipe, [ImageRequest(f"a {TOKEN} dog", seed=1)], FAST, 1, progress=False)[0]
    assert np.abs(np.asarray(plain, int) - np.asarray(same, int)).max() <= 1
    assert np.abs(np.asarray(plain, int) - np.asarray(token, int)).max() > 0
