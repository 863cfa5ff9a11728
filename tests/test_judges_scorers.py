"""HUB's general-alignment scorers as judges: ``pickscore`` on a tiny random-weight checkpoint in PickScore_v1's
layout (a transformers CLIPModel + CLIPProcessor), built offline by ``hubkit.judges.testing_scorers``."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
from PIL import Image

from hubkit.errors import JudgeError
from hubkit.judges import JUDGES
from hubkit.judges.roles import ImageTextScorer, roles_of
from hubkit.judges.testing_scorers import write_tiny_clip_processor, write_tiny_pickscore

pytest.importorskip("transformers")

TEXTS = ["a photo of a dog", "an oil painting of a lighthouse at night, in the style of an old master",
         "a cat", "two red apples on a wooden table"]


def _images(n, seed=0, size=(48, 64)):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)) for _ in range(n)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_pickscore(tmp_path_factory.mktemp("scorers") / "tiny-pickscore")


@pytest.fixture(scope="module")
def judge(tiny):
    return JUDGES.build("pickscore", model=str(tiny), device="cpu", batch_size=3)


def test_registered_as_an_image_text_scorer():
    assert "pickscore" in JUDGES.names()
    cls = JUDGES.get("pickscore")
    assert issubclass(cls, ImageTextScorer) and roles_of(cls) == ["ImageTextScorer"]
    assert cls.threshold is None and set(cls.repo_options) == {"model", "processor"}


def test_scores_batches_deterministically_and_batch_size_invariant(tiny, judge):
    images = _images(4)
    first = judge.score(images, TEXTS)
    assert len(first) == 4 and all(isinstance(s, float) and math.isfinite(s) for s in first)
    assert judge.score(images, TEXTS) == first
    one = JUDGES.build("pickscore", model=str(tiny), device="cpu", batch_size=1)
    # float32 matmuls batched differently round differently: scores near 50 moved by 1.1e-5 on one CPU
    assert np.allclose(one.score(images, TEXTS), first, rtol=1e-6, atol=1e-5)
    # unreadable image -> NaN, the others unchanged; mismatched lengths are an error
    mixed = judge.score([images[0], "not an image", images[2]], [TEXTS[0], TEXTS[1], TEXTS[2]])
    assert math.isnan(mixed[1]) and np.allclose([mixed[0], mixed[2]], [first[0], first[2]], rtol=1e-6, atol=1e-5)
    assert judge.score([], []) == []
    with pytest.raises(ValueError):
        judge.score(images, TEXTS[:2])


def test_score_is_logit_scale_times_cosine_of_the_models_own_embeddings(judge):
    import torch

    images, texts = _images(3, seed=1), TEXTS[:3]
    model, proc, tok = judge.model, judge.image_processor, judge.tokenizer
    with torch.no_grad():
        pix = proc(images=images, return_tensors="pt")["pixel_values"]
        img = model.get_image_features(pixel_values=pix)
        img = img if torch.is_tensor(img) else img.pooler_output
        ids = tok(texts, padding=True, truncation=True, max_length=77, return_tensors="pt")
        txt = model.get_text_features(**ids)
        txt = txt if torch.is_tensor(txt) else txt.pooler_output
        cos = torch.nn.functional.cosine_similarity(img, txt, dim=-1)
        expected = (model.logit_scale.exp() * cos).tolist()
    assert judge.logit_scale == pytest.approx(100.0, rel=1e-5)
    assert np.allclose(judge.score(images, texts), expected, rtol=0, atol=1e-4)


def test_missing_model_folder_is_one_line_naming_path_and_fix(tmp_path):
    missing = tmp_path / "no-such-pickscore"
    with pytest.raises(JudgeError) as exc:
        JUDGES.build("pickscore", model=str(missing))
    msg = str(exc.value)
    assert "\n" not in msg and str(missing) in msg and "hf download yuvalkirstain/PickScore_v1" in msg
    with pytest.raises(JudgeError, match="needs model="):
        JUDGES.build("pickscore")
    (tmp_path / "empty").mkdir()
    with pytest.raises(JudgeError, match="no config.json"):
        JUDGES.build("pickscore", model=str(tmp_path / "empty"))


def _fake_cache(cache, repo, source, files):
    """``repo`` in a Hugging Face cache layout under ``cache`` (refs/main -> one snapshot holding ``files``)."""
    entry = cache / f"models--{repo.replace('/', '--')}"
    snap = entry / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    for f in files:
        shutil.copy(source / f, snap / f)
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text("0" * 40)
    return snap


def test_repo_ids_resolve_from_the_hf_cache_only(tiny, judge, tmp_path, monkeypatch):
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    _fake_cache(cache, "yuvalkirstain/PickScore_v1", tiny, ["config.json", "model.safetensors"])
    with pytest.raises(JudgeError) as exc:  # model in the cache, its processor neither beside it nor cached
        JUDGES.build("pickscore", model="yuvalkirstain/PickScore_v1", device="cpu")
    assert "laion/CLIP-ViT-H-14-laion2B-s32B-b79K" in str(exc.value) and "\n" not in str(exc.value)
    proc = write_tiny_clip_processor(tmp_path / "proc")
    _fake_cache(cache, "laion/CLIP-ViT-H-14-laion2B-s32B-b79K", proc, [f.name for f in proc.iterdir()])
    cached = JUDGES.build("pickscore", model="hf://yuvalkirstain/PickScore_v1", device="cpu")  # default processor
    assert cached.model_name == "yuvalkirstain/PickScore_v1"
    assert cached.processor_name == "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
    images = _images(2, seed=4)
    assert np.allclose(cached.score(images, TEXTS[:2]), judge.score(images, TEXTS[:2]), atol=1e-5)
    with pytest.raises(JudgeError, match="not in the Hugging Face cache"):
        JUDGES.build("pickscore", model="someone/not-cached", device="cpu")


def test_separate_processor_folder(tiny, judge, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    model_only = tmp_path / "model-only"
    model_only.mkdir()
    for f in ("config.json", "model.safetensors"):
        shutil.copy(tiny / f, model_only / f)
    proc = write_tiny_clip_processor(tmp_path / "clip-h-processor")
    other = JUDGES.build("pickscore", model=str(model_only), processor=str(proc), device="cpu")
    images = _images(2, seed=3)
    assert np.allclose(other.score(images, TEXTS[:2]), judge.score(images, TEXTS[:2]), atol=1e-5)
    with pytest.raises(JudgeError) as exc:  # no processor beside the model, the CLIP-H one not in the cache
        JUDGES.build("pickscore", model=str(model_only), device="cpu")
    assert "laion/CLIP-ViT-H-14-laion2B-s32B-b79K" in str(exc.value) and "\n" not in str(exc.value)


def test_info_has_name_version_and_weights_sha256(tiny, judge):
    info = judge.info()
    assert info["name"] == "pickscore" and info["threshold"] is None
    assert info["version"].startswith("transformers-") and str(tiny) in info["version"]
    assert info["weights_sha256"] and all(len(h) == 64 for h in info["weights_sha256"].values())
    assert info["model"] == str(tiny) and info["dtype"] == "float32"


def test_judges_table_resolves_a_relative_model_folder(tiny):
    from hubkit.judges.config import load_judges_file

    table = tiny.parent / "judges.toml"
    table.write_text('[judges]\nalignment = { judge = "pickscore", model = "tiny-pickscore", device = "cpu" }\n')
    built = load_judges_file(table).role("alignment").build()
    assert built.name == "pickscore" and built.folder == tiny
    assert len(built.score(_images(2), TEXTS[:2])) == 2
