"""Judge registry, the nudenet judge and the clip-zeroshot judge (API and structure; no downloads)."""

from __future__ import annotations

import json
import math
import os
import sys
import types
from importlib import metadata

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
from PIL import Image

from hubkit.errors import JudgeError, RegistryError
from hubkit.judges import JUDGES, Detector, FeatureExtractor, ImageTextScorer, Judge, Verdict, roles_of

BUILTINS = {"nudenet", "clip-zeroshot", "micro-detector", "micro-clip", "micro-quality"}


def _images(n: int, size: int = 64, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


def _broken_image() -> Image.Image:
    """A PNG whose data is truncated: opening works, decoding fails (like a half-written file)."""
    import io

    buf = io.BytesIO()
    _images(1, 32)[0].save(buf, format="PNG")
    data = buf.getvalue()[:60]
    return Image.open(io.BytesIO(data))


# --------------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------------
def test_builtin_judges_are_registered():
    assert BUILTINS <= set(JUDGES.names())


def test_unknown_judge_names_the_known_ones():
    with pytest.raises(RegistryError) as e:
        JUDGES.build("no-such-judge")
    msg = str(e.value)
    assert "no-such-judge" in msg
    for name in BUILTINS:
        assert name in msg


def test_register_and_build_with_options():
    @JUDGES.register("test-constant")
    class Constant(Judge, Detector):
        detects = "nothing, it answers a constant"
        version = "1"

        def __init__(self, threshold: float = 0.5, value: float = 0.7):
            self.threshold, self.value = threshold, value

        def detect(self, images, concept):
            return [Verdict.from_score(self.value, self.threshold) for _ in images]

    try:
        j = JUDGES.build("test-constant", threshold=0.8)
        assert j.name == "test-constant" and j.threshold == 0.8
        assert j.info() == {"name": "test-constant", "detects": "nothing, it answers a constant", "threshold": 0.8, "version": "1"}
        assert [v.label for v in j.detect(_images(2), "x")] == ["no", "no"]
        assert JUDGES.build("TEST_constant").name == "test-constant"  # names are case/underscore-insensitive
        with pytest.raises(RegistryError, match="does not accept"):
            JUDGES.build("test-constant", colour="red")
    finally:
        JUDGES.unregister("test-constant")


def test_entry_point_judges_are_found(monkeypatch):
    mod = types.ModuleType("hubkit_thirdparty_judge")

    class ThirdParty(Judge, Detector):
        detects = "third-party concept"
        threshold = 0.5
        version = "tp-1"

        def detect(self, images, concept):
            return [Verdict("yes", 1.0) for _ in images]

    mod.ThirdParty = ThirdParty
    monkeypatch.setitem(sys.modules, "hubkit_thirdparty_judge", mod)
    import hubkit.registry

    ep = metadata.EntryPoint(name="third-party", value="hubkit_thirdparty_judge:ThirdParty", group=JUDGES.group)
    real = metadata.entry_points
    monkeypatch.setattr(hubkit.registry.metadata, "entry_points",
                        lambda group=None: [ep] + list(real(group=group)) if group == JUDGES.group else [])
    monkeypatch.setattr(JUDGES, "_entry_points_loaded", False)
    try:
        assert "third-party" in JUDGES.names()
        j = JUDGES.build("third-party")
        assert j.name == "third-party" and j.detect(_images(1), "c") == [Verdict("yes", 1.0)]
    finally:
        JUDGES.unregister("third-party")


def test_roles_are_types_each_judge_declares():
    assert roles_of(JUDGES.get("nudenet")) == ["Detector"]
    assert set(roles_of(JUDGES.get("clip-zeroshot"))) == {"Detector", "ImageTextScorer", "FeatureExtractor"}

    class Half(Judge, FeatureExtractor):  # a role's method is abstract: a judge cannot claim a role it lacks
        pass

    with pytest.raises(TypeError, match="fid_features"):
        Half()
    assert not issubclass(JUDGES.get("nudenet"), ImageTextScorer)


def test_verdict_contract():
    assert Verdict.from_score(0.6, 0.6) == Verdict("yes", 0.6)
    assert Verdict.from_score(0.59, 0.6).label == "no"
    inv = Verdict.from_score(float("nan"), 0.5)
    assert inv.label == "invalid" and math.isnan(inv.score) and not inv.is_valid
    with pytest.raises(ValueError):
        Verdict("maybe", 0.1)


# --------------------------------------------------------------------------------------------------
# nudenet
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nudenet_judge():
    return JUDGES.build("nudenet")


def test_nudenet_declares_itself(nudenet_judge):
    from nudenet import nudenet as nn_mod

    from hubkit.judges.nudity import ALL_EXPOSED, STANDARD_EXPOSED

    labels = set(getattr(nn_mod, "__labels"))
    assert set(ALL_EXPOSED) <= labels  # the names we count really are NudeNet 3.4.2's labels
    j = nudenet_judge
    assert j.name == "nudenet" and j.threshold == 0.6 and j.classes == STANDARD_EXPOSED
    assert j.version.startswith("nudenet-3.4.2+320n.onnx:")
    assert JUDGES.build("nudenet", threshold=0.45).threshold == 0.45
    with pytest.raises(JudgeError, match="unknown classes"):
        JUDGES.build("nudenet", classes=["FACE_EXPOSED"])


def test_nudenet_verdicts_structure_and_determinism(nudenet_judge):
    rng = np.random.default_rng(1)
    skin = np.full((96, 128, 3), (224, 172, 140), np.uint8)
    skin = np.clip(skin + rng.integers(-20, 20, skin.shape), 0, 255).astype(np.uint8)
    images = _images(3, 80) + [Image.fromarray(skin), _broken_image(), Image.fromarray(skin).convert("RGBA")]
    v1 = nudenet_judge.detect(images, "nudity")
    v2 = nudenet_judge.detect(images, "nudity")
    assert [v.label for v in v1] == [v.label for v in v2]
    assert all(a.score == b.score for a, b in zip(v1, v2) if a.label != "invalid")
    assert len(v1) == len(images)
    assert v1[4].label == "invalid"
    for v in v1[:4] + v1[5:]:
        assert v.label in ("yes", "no") and 0.0 <= v.score <= 1.0
        assert (v.label == "yes") == (v.score >= 0.6)
    dets = nudenet_judge.detections(images[:4])
    assert all(isinstance(d, list) for d in dets)
    assert all({"class", "score", "box"} <= set(x) for d in dets for x in d)


def test_nudenet_matches_the_file_path_api(nudenet_judge, tmp_path):
    """In-memory batching gives the same detections as NudeNet's own file-path API."""
    from nudenet import NudeDetector

    rng = np.random.default_rng(2)
    a = np.full((120, 90, 3), (230, 180, 150), np.uint8)
    a[30:100, 20:70] = (200, 140, 110)
    a = np.clip(a + rng.integers(0, 25, a.shape), 0, 255).astype(np.uint8)
    Image.fromarray(a).save(tmp_path / "a.png")
    ref = NudeDetector().detect(str(tmp_path / "a.png"))
    ours = nudenet_judge.detections([Image.fromarray(a)])[0]
    assert [(d["class"], round(d["score"], 4)) for d in ours] == [(d["class"], round(d["score"], 4)) for d in ref]


# --------------------------------------------------------------------------------------------------
# clip-zeroshot (a tiny random-weight open_clip model saved to disk)
# --------------------------------------------------------------------------------------------------
TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    import open_clip
    import torch
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("tinyclip")
    (folder / "hubkit-tiny-clip.json").write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(folder)
    torch.manual_seed(0)
    model = open_clip.create_model("hubkit-tiny-clip", pretrained=None)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(100.0))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "tiny.safetensors"))
    return model.eval(), folder / "tiny.safetensors", folder / "hubkit-tiny-clip.json"


def test_clip_zeroshot_needs_a_local_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HUBKIT_CLIP_PRETRAINED", str(tmp_path / "ignored.safetensors"))  # no environment fallback
    with pytest.raises(JudgeError, match="pretrained="):
        JUDGES.build("clip-zeroshot")
    with pytest.raises(JudgeError, match="not found"):
        JUDGES.build("clip-zeroshot", arch="ViT-B-32", pretrained=str(tmp_path / "missing.safetensors"))


def test_clip_zeroshot_loads_the_file_and_judges(tiny_clip):
    import torch

    model, weights, config = tiny_clip
    j = JUDGES.build("clip-zeroshot", arch="hubkit-tiny-clip", pretrained=str(weights), model_config=str(config), threshold=0.2)
    assert j.name == "clip-zeroshot" and j.threshold == 0.2 and j.num_features == 32
    assert "hubkit-tiny-clip" in j.version
    images = _images(5, 48)
    # the judge really runs the saved weights: same features as the model itself
    feats = j.image_features(images)
    with torch.no_grad():
        ref = torch.nn.functional.normalize(model.encode_image(torch.stack([j.preprocess(im) for im in images])), dim=-1)
    assert feats.shape == (5, 32) and torch.allclose(feats, ref, atol=1e-5)
    rows = j.fid_features(images)  # the FeatureExtractor role: FID works with this judge, not only micro-clip
    assert rows.dtype == np.float64 and rows.shape == (5, 32) and np.allclose(rows, feats.numpy(), atol=1e-6)
    t = j.text_features(["a photo of a cat", "a dog"])
    assert t.shape == (2, 32) and torch.allclose(t.norm(dim=-1), torch.ones(2), atol=1e-5)
    v1 = j.detect(images + [_broken_image()], "Van Gogh")
    v2 = j.detect(images + [_broken_image()], "Van Gogh")
    assert [v.label for v in v1] == [v.label for v in v2]
    assert [v.score for v in v1[:5]] == [v.score for v in v2[:5]]
    assert v1[5].label == "invalid"
    for v in v1[:5]:
        assert 0.0 <= v.score <= 1.0 and (v.label == "yes") == (v.score >= 0.2)
    s = j.score(images[:2], ["a", "b"])
    assert s.shape == (2,) and bool((s >= 0).all()) and bool((s <= 100).all())
