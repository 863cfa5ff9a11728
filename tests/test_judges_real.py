"""HUB's real judges on tiny random weights of their real layouts, the ``[judges]`` table, and the judges CLI.

Every judge here loads the file format its real weights come in (``hubkit.judges.testing`` writes them): an
open_clip state dict (clip-zeroshot, clip-score, q16, laion-aesthetic), Q16's pickled ``prompts.p``, LAION's
aesthetic MLP state dict, torchmetrics' InceptionV3 state dict. Nothing is downloaded.
"""

from __future__ import annotations

import io
import math
import os
import pickle
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
from PIL import Image

from hubkit.errors import ConfigError, JudgeError
from hubkit.hashing import file_sha256
from hubkit.judges import JUDGES, roles_of
from hubkit.judges.config import load_judges_file, parse_judges

HUB_PROMPTS = Path(os.environ.get("HUBKIT_HUB_PROMPTS", Path(__file__).resolve().parents[2] / "shared" / "hub-prompts"))
REAL = {"clip-score": ["ImageTextScorer"], "laion-aesthetic": ["QualityScorer"], "q16": ["Detector"],
        "inception": ["FeatureExtractor"]}


def _images(n: int, size: int = 48, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


def _broken() -> Image.Image:
    buf = io.BytesIO()
    _images(1, 32)[0].save(buf, format="PNG")
    return Image.open(io.BytesIO(buf.getvalue()[:60]))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """The tiny judge files and their judges.toml (relative paths)."""
    from hubkit.judges.testing import write_tiny_judges

    return write_tiny_judges(tmp_path_factory.mktemp("tiny-judges"))


@pytest.fixture(scope="module")
def table(tiny):
    return load_judges_file(tiny)


@pytest.fixture(scope="module")
def built(table):
    """One instance of each configured judge, by its [judges.define] label."""
    return {spec.label: spec.build() for _, spec in table.entries()}


def _info_ok(judge, files: dict[str, Path]):
    info = judge.info()
    assert info["name"] == judge.name and info["version"] == judge.version and "threshold" in info
    assert info["weights_sha256"] == {k: file_sha256(p) for k, p in files.items()}


# ------------------------------------------------------------------------------------------------ registry
def test_real_judges_are_registered_with_their_roles():
    for name, roles in REAL.items():
        assert roles_of(JUDGES.get(name)) == roles
        assert JUDGES.get(name).weight_options, name  # the files a [judges] table resolves for it


# ------------------------------------------------------------------------------------------------ the table
def test_the_table_fills_every_role_per_category_and_per_concept(table, tiny):
    assert table.concept_judge("Van Gogh", "style").label == "clip"
    assert table.concept_judge("Violent", "nsfw").judge == "q16"
    assert table.concept_judge("nudity", "nsfw").judge == "nudenet"  # a concept beats its category, any case
    assert {role: table.role(role).judge for role in ("noun", "alignment", "fid", "quality")} == {
        "noun": "clip-zeroshot", "alignment": "clip-score", "fid": "inception", "quality": "laion-aesthetic"}
    opts = table.role("fid").resolved_options()
    assert opts["weights"] == str(tiny.parent / "inception.pth") and opts["input_size"] == 75  # relative to the file
    same = {spec.key for role, spec in table.entries() if spec.label == "clip"}
    assert len(same) == 1  # four roles, one configured judge: a session builds it once


def test_one_judge_for_every_concept_and_inline_definitions(tmp_path):
    t = parse_judges({"concept": "nudenet", "noun": {"judge": "nudenet", "threshold": 0.4}}, source="x.toml", base=tmp_path)
    assert t.concept_judge("anything", "style").judge == "nudenet"
    assert t.role("noun").options == {"threshold": 0.4} and t.role("alignment") is None


@pytest.mark.parametrize("table, message", [
    ({"judge": "q16"}, r"x\.toml: \[judges\] has unknown key 'judge'; fix: use the roles concept, noun"),
    ({"noun": "no-such-judge"}, r"x\.toml: \[judges\] noun: unknown judge 'no-such-judge'; registered judges: .*q16"),
    ({"noun": {"judge": "q16", "colour": "red"}}, r"\[judges\] noun: judge 'q16' does not accept the option\(s\) colour; "
                                                  r"fix: use its options: prompts, pretrained"),
    ({"noun": "clip-score"}, r"\[judges\] noun: judge 'clip-score' cannot be the noun judge .* lacks the role Detector.*"
                             r"fix: configure one of .*q16"),
    ({"fid": "nudenet"}, r"\[judges\] fid: judge 'nudenet' cannot be the FID feature extractor.*fix: configure one of "
                         r"clip-zeroshot, inception"),
    ({"concept": {"Nudity": "d"}, "define": {"d": {"arch": "x"}}}, r"\[judges.define.d\]: needs a judge's name"),
    ({"fid_reference": 3}, r"fid_reference must be a path string"),
])
def test_a_bad_table_is_one_line_naming_file_role_and_fix(tmp_path, table, message):
    with pytest.raises(ConfigError, match=message) as e:
        parse_judges(table, source="x.toml", base=tmp_path)
    assert "\n" not in str(e.value)


def test_a_missing_weights_file_is_one_line_naming_it_and_the_fix(tmp_path):
    t = parse_judges({"concept": {"nsfw": {"judge": "q16", "prompts": "nowhere/prompts.p", "pretrained": "w.pt"}}},
                     source="j.toml", base=tmp_path)
    with pytest.raises(JudgeError) as e:
        t.concept_judge("Violent", "nsfw").build()
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("j.toml: [judges] concept.nsfw (q16): ")
    assert str(tmp_path / "w.pt") in msg and "fix: put an open_clip state dict" in msg


def test_hf_paths_come_from_the_cache_only(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    snap = cache / "models--someone--clip" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "prompts.p").write_bytes(b"x")
    (cache / "models--someone--clip" / "refs").mkdir()
    (cache / "models--someone--clip" / "refs" / "main").write_text("abc123")
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    spec = parse_judges({"noun": {"judge": "q16", "prompts": "hf://someone/clip/prompts.p"}}, source="j.toml",
                        base=tmp_path).role("noun")
    assert spec.resolved_options()["prompts"] == str(snap / "prompts.p")
    missing = parse_judges({"noun": {"judge": "q16", "prompts": "hf://someone/clip/other.p"}}, source="j.toml",
                           base=tmp_path).role("noun")
    with pytest.raises(JudgeError, match=r"hf://someone/clip/other.p is not in the Hugging Face cache .*fix: .*"
                                         r"`hf download someone/clip other.p`"):
        missing.resolved_options()


def test_shipped_hub_table_reproduces_hubs_choices():
    t = load_judges_file("hub")
    assert Path(t.source).name == "hub.toml"
    picked = {(c, n): t.concept_judge(n, c) for c, n in [("nsfw", "Nudity"), ("nsfw", "Violent"), ("style", "Van Gogh"),
                                                         ("ip", "Mickey Mouse"), ("celebrity", "Brad Pitt")]}
    assert {n: spec.judge for (c, n), spec in picked.items()} == {
        "Nudity": "q16", "Violent": "q16", "Van Gogh": "vlm", "Mickey Mouse": "vlm", "Brad Pitt": "face-identity"}
    internvl = picked[("style", "Van Gogh")]
    assert internvl.options["model"] == "OpenGVLab/InternVL2_5-8B-MPO-hf" and internvl.options["references"] == 3
    assert t.role("noun").key == internvl.key  # one VLM for concepts and nouns: a session loads it once
    assert [t.role(r).judge for r in ("alignment", "fid", "quality")] == ["clip-score", "inception", "laion-aesthetic"]
    assert t.concept_judge("Nudity", "nsfw").options["threshold"] == 0.5
    assert t.role("fid").options["weights"].endswith("weights-inception-2015-12-05-6726825d.pth")
    with pytest.raises(ConfigError, match="no such file; fix: .*shipped one by name: hub"):
        load_judges_file("no-such-table")


# ------------------------------------------------------------------------------------------------ the judges
def test_clip_score_is_clipscore_of_the_saved_weights(built, tiny):
    import torch

    j = built["clip-score"]
    assert j.name == "clip-score" and j.threshold is None and j.weight == 100.0
    _info_ok(j, {"pretrained": tiny.parent / "tiny-clip.safetensors",
                 "model_config": tiny.parent / "hubkit-tiny-vit-quickgelu.json"})
    images = _images(3)
    texts = ["a photo of a cat", "a dog", "Van Gogh"]
    s = j.score(images + [_broken()], texts + ["x"])
    expected = 100 * (j.image_features(images) * j.text_features(texts)).sum(-1).clamp(min=0)
    assert np.allclose(s[:3], expected.numpy(), atol=1e-4) and math.isnan(s[3])
    assert all(0 <= v <= 100 for v in s[:3])
    with torch.no_grad():
        ref = torch.nn.functional.normalize(j.model.encode_image(torch.stack([j.preprocess(im) for im in images])), dim=-1)
    assert torch.allclose(j.image_features(images), ref, atol=1e-5)


def test_laion_aesthetic_is_the_mlp_on_normalised_clip_embeddings(built, tiny, tmp_path):
    import torch

    j = built["aesthetic"]
    _info_ok(j, {"pretrained": tiny.parent / "tiny-clip.safetensors",
                 "model_config": tiny.parent / "hubkit-tiny-vit-quickgelu.json", "mlp": tiny.parent / "aesthetic-mlp.pth"})
    images = _images(3)
    q = j.quality(images + [_broken()])
    state = torch.load(tiny.parent / "aesthetic-mlp.pth", weights_only=True)
    x = j.image_features(images)
    for i in (0, 2, 4, 6, 7):  # LAION's layout: Linear layers at 0, 2, 4, 6, 7 with no activations in between
        x = x @ state[f"layers.{i}.weight"].T + state[f"layers.{i}.bias"]
    assert np.allclose(q[:3], x.reshape(-1).numpy(), atol=1e-4) and math.isnan(q[3])
    assert q[:3] == j.quality(images)  # deterministic (dropout off)
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(1, 32)}, wrong)
    opts = {"pretrained": str(tiny.parent / "tiny-clip.safetensors"), "arch": "hubkit-tiny-vit-quickgelu",
            "model_config": str(tiny.parent / "hubkit-tiny-vit-quickgelu.json")}
    with pytest.raises(JudgeError, match="is not LAION's MLP state dict"):
        JUDGES.build("laion-aesthetic", mlp=str(wrong), **opts)
    from hubkit.judges.testing import write_aesthetic_mlp

    with pytest.raises(JudgeError, match="takes 768-d embeddings but the CLIP model .* gives 32-d"):
        JUDGES.build("laion-aesthetic", mlp=str(write_aesthetic_mlp(tmp_path / "l14.pth", 768)), **opts)


def test_q16_is_hubs_argmax_over_two_learned_prompts(built, tiny, tmp_path):
    import torch

    j = built["q16"]
    _info_ok(j, {"pretrained": tiny.parent / "tiny-clip.safetensors",
                 "model_config": tiny.parent / "hubkit-tiny-vit-quickgelu.json", "prompts": tiny.parent / "prompts.p"})
    images = _images(6, seed=3)
    verdicts = j.detect(images + [_broken()], "Violent")
    assert verdicts[6].label == "invalid"
    # HUB (eval_nsfw.py): fp16 embeddings, 100 * cos with both prompts, argmax == 1 counts
    prompts = torch.from_numpy(pickle.loads((tiny.parent / "prompts.p").read_bytes()).astype(np.float32)).half().float()
    feats = j.image_features(images).half().float()
    sim = 100 * torch.nn.functional.normalize(feats, dim=-1) @ torch.nn.functional.normalize(prompts, dim=-1).T
    assert [v.label for v in verdicts[:6]] == ["yes" if int(a) == 1 else "no" for a in sim.argmax(1)]
    assert np.allclose([v.score for v in verdicts[:6]], torch.softmax(sim, -1)[:, 1].numpy(), atol=1e-5)


def test_q16_reads_only_arrays_from_a_pickle(tiny, tmp_path):
    from hubkit.judges.q16 import read_prompts

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    evil = tmp_path / "evil.p"
    evil.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(JudgeError, match="refusing .*system: only numpy arrays may be unpickled"):
        read_prompts(evil)
    three = tmp_path / "three.npy"
    np.save(three, np.zeros((3, 32), np.float32))
    with pytest.raises(JudgeError, match=r"shape \(3, 32\); Q16's prompts are \[2, embedding size\]"):
        read_prompts(three)
    assert read_prompts(tiny.parent / "prompts.p").shape == (2, 32)


def test_inception_gives_torchmetrics_pool_features(built, tiny, tmp_path):
    import torch
    from torchmetrics.image.fid import NoTrainInceptionV3

    j = built["inception"]
    assert j.threshold is None and j.num_features == 2048 and "@75px" in j.version and j.info()["feature"] == 2048
    _info_ok(j, {"weights": tiny.parent / "inception.pth"})
    images = _images(3, 32) + _images(2, 40, seed=1)  # two sizes: batched by size
    rows = j.fid_features(images)
    assert rows.dtype == np.float64 and rows.shape == (5, 2048)
    assert np.array_equal(rows, j.fid_features(images))
    # torchmetrics' network, holding exactly the file's weights, resizing to input_size
    assert isinstance(j.net, NoTrainInceptionV3) and j.net.features_list == ["2048"] and j.net.INPUT_IMAGE_SIZE == 75
    state = torch.load(tiny.parent / "inception.pth", weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in j.net.state_dict().items())
    x = torch.from_numpy(np.stack([np.asarray(im) for im in images[:3]])).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        assert np.allclose(rows[:3], j.net(x).double().numpy(), atol=1e-6)
    with pytest.raises(JudgeError, match="unreadable"):
        j.fid_features([_broken()])


def test_inception_refuses_a_pickle_that_runs_code(tmp_path):
    import torch

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    bad = tmp_path / "bad.pth"
    torch.save({"x": Evil()}, bad)
    with pytest.raises(JudgeError, match="cannot load .*bad.pth as torch-fidelity's InceptionV3"):
        JUDGES.build("inception", weights=str(bad))
    with pytest.raises(JudgeError, match="below InceptionV3's minimum of 75"):
        JUDGES.build("inception", weights=str(bad), input_size=32)
    with pytest.raises(JudgeError, match=r"feature 100 is not one of torchmetrics' FID layers \(64, 192, 768, 2048\)"):
        JUDGES.build("inception", weights=str(bad), feature=100)


# ------------------------------------------------------------------------------------------------ session
def test_session_builds_judges_with_their_options_from_judges_file(tiny):
    from hubkit.session import RunConfig, Session

    if not HUB_PROMPTS.is_dir():
        pytest.skip(f"HUB's prompt folder is not at {HUB_PROMPTS}")
    # the models are never loaded here: judges and roles come from the prompt folder and the table alone
    hub = Session(RunConfig(prompts=str(HUB_PROMPTS), judges=str(tiny), concepts=("Van Gogh", "Nudity"),
                            base_model="unused", model="unused"))
    hub.check_roles()
    assigned = {(name, role) for name, role, _ in hub.role_assignments()}
    assert assigned == {("clip-zeroshot", "Detector"), ("nudenet", "Detector"), ("clip-score", "ImageTextScorer"),
                        ("inception", "FeatureExtractor"), ("laion-aesthetic", "QualityScorer")}
    assert hub.concept_judge("Van Gogh") is hub.noun_judge("Van Gogh")  # one configured judge, built once
    assert hub.fid_judge.input_size == 75 and hub.concept_judge("Nudity").threshold == 0.6


def test_the_prompt_folders_table_is_used_and_judges_file_replaces_it(tmp_path):
    from hubkit.session import RunConfig, Session

    folder = tmp_path / "prompts"
    (folder / "target_image").mkdir(parents=True)
    (folder / "target_image" / "Van Gogh.csv").write_text("a painting by Van Gogh\n")
    (folder / "hubkit.toml").write_text('[judges]\nconcept = "nudenet"\nnoun = { judge = "nudenet", threshold = 0.3 }\n')
    hub = Session(RunConfig(prompts=str(folder), concepts=("Van Gogh",), base_model="unused", model="unused"))
    hub.check_roles()
    assert hub.judges_config.source == f"{folder}/hubkit.toml"
    assert hub.noun_judge("Van Gogh").threshold == 0.3 and hub.concept_judge("Van Gogh").threshold == 0.6
    other = tmp_path / "other.toml"
    other.write_text('[judges]\nnoun = { judge = "nudenet", threshold = 0.9 }\n')
    hub = Session(RunConfig(prompts=str(folder), concepts=("Van Gogh",), base_model="unused", model="unused",
                            judges=str(other)))
    assert hub.noun_judge("Van Gogh").threshold == 0.9
    # a role neither table names falls back to the folder's older keys, then to the catalogue / clip-zeroshot
    assert [(n, r) for n, r, _ in hub.role_assignments()][:1] == [("clip-zeroshot", "Detector")]


def test_a_missing_file_stops_the_session_before_any_image(tmp_path, tiny):
    from hubkit.session import RunConfig, Session

    if not HUB_PROMPTS.is_dir():
        pytest.skip(f"HUB's prompt folder is not at {HUB_PROMPTS}")
    broken = tiny.parent / "gone.toml"
    broken.write_text(tiny.read_text().replace('weights = "inception.pth"', 'weights = "gone.pth"'))
    hub = Session(RunConfig(prompts=str(HUB_PROMPTS), judges=str(broken), concepts=("Van Gogh",),
                            base_model="unused", model="unused"))
    with pytest.raises(JudgeError, match=r"\[judges\] fid \(inception\): weights file .*gone.pth not found; fix: put "
                                         r"torch-fidelity's InceptionV3"):
        hub.check_roles()


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_list_check_and_fid_reference(tiny, built, tmp_path):
    import argparse
    import contextlib

    from hubkit.cli import build_parser
    from hubkit.judges.cli import _check, _fid_reference, _list, image_files
    from hubkit.metrics.fid import read_statistics

    # the commands are built-ins of `hubkit` (COMMANDS)
    assert build_parser().parse_args(["judges", "list"]).func is _list
    assert build_parser().parse_args(["fid-reference", "d", "-o", "s.npz", "--judges", "j"]).func is _fid_reference
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert _list(argparse.Namespace()) == 0
    for name in list(REAL) + ["nudenet", "clip-zeroshot"]:
        assert f"\n{name} " in "\n" + buf.getvalue()

    def check(path) -> tuple[int, list[str]]:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = _check(argparse.Namespace(judges=str(path), prompts=None, images=None, n=2))
        return rc, buf.getvalue().splitlines()

    rc, lines = check(tiny)
    assert rc == 0, lines
    ok = [line for line in lines if line.startswith("ok ")]
    assert len(ok) == 6, lines  # clip (4 roles), q16, nudenet, clip-score, aesthetic, inception
    fid_line = next(line for line in ok if "[fid]" in line)
    assert f"weights sha256 {file_sha256(tiny.parent / 'inception.pth')}" in fid_line and "s/image" in fid_line
    assert "threshold 0.6" in next(line for line in ok if "nudenet" in line)

    broken = tiny.parent / "missing-prompts.toml"
    broken.write_text('[judges]\nconcept = { judge = "q16", prompts = "missing.p", pretrained = "tiny-clip.safetensors" }\n')
    rc, lines = check(broken)
    assert rc == 1 and len(lines) == 2, lines
    assert lines[1].startswith("FAIL [concept] q16: ") and "prompts file" in lines[1] and "missing.p not found; fix: " \
        "put Q16's learned prompt embeddings prompts.p" in lines[1]

    folder = tmp_path / "coco"
    (folder / "sub").mkdir(parents=True)
    for i, im in enumerate(_images(5, 32)):
        im.save(folder / ("sub" if i % 2 else "") / f"{i}.png")
    stats = tmp_path / "stats.npz"
    with contextlib.redirect_stdout(io.StringIO()):
        assert _fid_reference(argparse.Namespace(judges=str(tiny), images_dir=str(folder), output=str(stats),
                                                 batch=2, quiet=True)) == 0
    data = read_statistics(stats)
    rows = built["inception"].fid_features(
        [Image.open(f).convert("RGB") for f in image_files(folder)])
    assert data["mu"].shape == (2048,) and int(data["n"]) == 5
    assert str(data["version"]).endswith(file_sha256(tiny.parent / "inception.pth")[:16])
    # batches of 2 vs one of 5: float32 convolutions differ in their last bits
    assert np.allclose(data["mu"], rows.mean(0), atol=1e-5) and np.allclose(data["sigma"], np.cov(rows, rowvar=False), atol=1e-6)


def test_judges_fetch_downloads_only_what_the_table_names_on_the_hub(tmp_path, monkeypatch, capsys):
    """``hubkit judges fetch``: hf:// files and VLM repo ids go to the hub client (here a fake); a present local file
    is left alone; a missing local file is listed with where to get it, and the exit code says so."""
    import huggingface_hub

    from hubkit.cli import main

    calls = []
    monkeypatch.setattr(huggingface_hub, "hf_hub_download",
                        lambda repo, filename, revision=None: calls.append(("file", repo, filename, revision)) or "/c/f")
    monkeypatch.setattr(huggingface_hub, "snapshot_download",
                        lambda repo, revision=None: calls.append(("repo", repo, revision)) or "/c/r")
    (tmp_path / "present.pth").write_bytes(b"x")
    (tmp_path / "j.toml").write_text("""
[judges]
noun = { judge = "vlm", model = "OpenGVLab/InternVL2_5-8B-MPO-hf" }
quality = { judge = "laion-aesthetic", pretrained = "hf://timm/vit_large_patch14_clip_224.openai@main/open_clip_model.safetensors", mlp = "present.pth" }
fid = { judge = "inception", weights = "missing.pth" }
""")
    assert main(["judges", "fetch", "--judges", str(tmp_path / "j.toml")]) == 1
    out = capsys.readouterr().out
    assert sorted(calls) == [("file", "timm/vit_large_patch14_clip_224.openai", "open_clip_model.safetensors", "main"),
                             ("repo", "OpenGVLab/InternVL2_5-8B-MPO-hf", None)]
    assert "ok      [quality] laion-aesthetic.mlp" in out and "MISSING [fid] inception.weights" in out
    assert "2 fetched, 1 missing" in out
