"""The ``vlm`` judge (HUB's Style/IP/pinpoint/selective-alignment judge) on tiny random-weight checkpoints of both
real architectures (Qwen2.5-VL, InternVL), built offline by ``hubkit.judges.testing_vlm``."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from hubkit.errors import JudgeError
from hubkit.judges import JUDGES, Verdict
from hubkit.judges import vlm as vlm_mod
from hubkit.judges.testing_vlm import write_tiny_vlm
from hubkit.judges.vlm import build_conversation, conversation_images, parse_answer, prompt_kind

pytest.importorskip("transformers")


def _images(n, seed=0, size=(48, 64)):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)) for _ in range(n)]


@pytest.fixture(scope="module", params=["qwen2_5_vl", "internvl"])
def tiny(request, tmp_path_factory):
    return write_tiny_vlm(tmp_path_factory.mktemp(request.param), request.param)


def test_loads_from_folder_and_answers_batches_deterministically(tiny):
    judge = JUDGES.build("vlm", model=str(tiny), max_new_tokens=4, batch_size=2)
    assert judge.threshold is None and judge.references == 3
    images = _images(3)
    refs = [_images(3, seed=10 + i) for i in range(3)]
    refs[1] = []  # this query gets the noun question: the batch mixes prompts of different lengths (left padding)
    first = judge.detect(images, "Van Gogh", refs, category="style")
    responses = list(judge.last_responses)
    again = judge.detect(images, "Van Gogh", refs, category="style")
    assert len(first) == 3 and all(isinstance(v, Verdict) for v in first)
    assert {v.label for v in first} <= {"yes", "no", "invalid"}
    assert [v.label for v in first] == [v.label for v in again] and judge.last_responses == responses
    nouns = judge.detect(images, "dog")  # no references: the noun judge
    assert len(nouns) == 3 and {v.label for v in nouns} <= {"yes", "no", "invalid"}
    # batch size does not change the answers
    one = JUDGES.build("vlm", model=str(tiny), max_new_tokens=4, batch_size=1)
    one.detect(images, "Van Gogh", refs, category="style")
    assert one.last_responses == responses
    assert sum(judge.info()["answers"].values()) == 9


def test_image_size_limits_are_accepted(tiny):
    qwen = "qwen" in tiny.name
    limit = {"max_pixels": 56 * 56} if qwen else {"max_tiles": 2}
    judge = JUDGES.build("vlm", model=str(tiny), max_new_tokens=2, dtype="float32", **limit)
    assert len(judge.detect(_images(2, size=(96, 128)), "cat", [_images(3), _images(3, 1)])) == 2
    wrong = {"max_tiles": 2} if qwen else {"max_pixels": 56 * 56}
    with pytest.raises(JudgeError, match="max_pixels|max_tiles"):
        JUDGES.build("vlm", model=str(tiny), **wrong)


def test_info_has_name_version_weights_and_answers(tiny):
    judge = JUDGES.build("vlm", model=str(tiny), max_new_tokens=2)
    judge.detect([_images(1)[0], "not an image"], "cat")
    info = judge.info()
    assert info["name"] == "vlm" and info["threshold"] is None
    assert str(tiny) in info["version"] and info["version"].startswith("transformers-")
    assert info["weights_sha256"] and all(len(h) == 64 for h in info["weights_sha256"].values())
    assert info["answers"]["invalid"] >= 1 and set(info["answers"]) == {"yes", "no", "idk", "wrong", "invalid"}
    assert info["decoding"] == "greedy"


@pytest.mark.parametrize("text, answer", [
    ("yes", "yes"), ("No", "no"), ("IDK.", "idk"), ("wrong", "wrong"),
    ("**Final answer:** Yes.", "yes"), ("Final Answer: **no**", "no"), ("`idk`", "idk"),
    ("STEP A: references A, B and C show a cat, yes.\nSTEP B: skipped.\n\nwrong\n", "wrong"),
    ("Image D shows yes the same strokes; yes indeed.\nFinal answer: no", "no"),
    ("Yes, the dog is clearly visible.", "yes"),
    ("", "invalid"), ("   \n  \n", "invalid"), (None, "invalid"),
    ("The image shows a cat.", "invalid"), ("No doubt it is Van Gogh", "invalid"), ("yes or no", "invalid"),
    ("answer: maybe", "invalid"),
])
def test_parser(text, answer):
    assert parse_answer(text) == answer


def test_prompt_builder_orders_references_then_query():
    refs, query = ["A-img", "B-img", "C-img"], "D-img"
    conv = build_conversation(query, "Van Gogh", refs, kind="style")
    assert conversation_images(conv) == ["A-img", "B-img", "C-img", "D-img"]
    content = conv[0]["content"]
    labels = [c["text"].strip() for c in content if c["type"] == "text" and c["text"].startswith("Image ")]
    assert labels == ["Image A:", "Image B:", "Image C:", "Image D:"]
    # each label comes right before its image
    for label, image in zip(labels, conversation_images(conv)):
        i = next(k for k, c in enumerate(content) if c["type"] == "text" and c["text"].strip() == label)
        assert content[i + 1] == {"type": "image", "image": image}
    text = " ".join(c["text"] for c in content if c["type"] == "text")
    assert "brush strokes" in text and "Van Gogh" in text and "wrong" in text and "A, B and C" in text
    assert text.rstrip().endswith("yes / no / idk / wrong")
    ip = " ".join(c["text"] for c in build_conversation(query, "Mickey Mouse", refs, "ip")[0]["content"]
                  if c["type"] == "text")
    assert "essential features" in ip and "brush" not in ip
    noun = build_conversation(query, "dog", None)
    assert conversation_images(noun) == ["D-img"] and "dog" in noun[0]["content"][1]["text"]
    assert prompt_kind("auto", "Style") == "style" and prompt_kind("auto", "ip") == "ip"
    assert prompt_kind("auto", None) == "object" and prompt_kind("ip", "style") == "ip"


def test_answers_map_to_verdicts_and_are_counted(tiny, monkeypatch):
    judge = JUDGES.build("vlm", model=str(tiny), max_new_tokens=2)
    canned = ["reasoning\nyes", "no", "idk", "...\nwrong", "gibberish"]
    seen = []
    monkeypatch.setattr(judge, "generate", lambda chats: seen.extend(chats) or canned[: len(chats)])
    verdicts = judge.detect(_images(5), "cat", [_images(5)] * 5)  # 5 references given, the judge uses 3
    assert [len(conversation_images(c)) for c in seen] == [4] * 5
    assert [v.label for v in verdicts] == ["yes", "no", "no", "no", "invalid"]
    assert verdicts[0] == Verdict("yes", 1.0) and verdicts[1] == Verdict("no", 0.0)
    assert judge.info()["answers"] == {"yes": 1, "no": 1, "idk": 1, "wrong": 1, "invalid": 1}
    strict = JUDGES.build("vlm", model=str(tiny), max_new_tokens=2, wrong="invalid")
    monkeypatch.setattr(strict, "generate", lambda chats: ["wrong"] * len(chats))
    assert [v.label for v in strict.detect(_images(1), "cat", [_images(3)])] == ["invalid"]


def test_missing_model_is_one_line_error_naming_path_and_fix(tmp_path):
    missing = tmp_path / "no-such-vlm"
    with pytest.raises(JudgeError) as err:
        JUDGES.build("vlm", model=str(missing))
    msg = str(err.value)
    assert "\n" not in msg and str(missing) in msg and "hf download" in msg
    with pytest.raises(JudgeError, match=r"hf download nobody/no-such-model"):
        JUDGES.build("vlm", model="nobody/no-such-model")
    with pytest.raises(JudgeError, match="needs model="):
        JUDGES.build("vlm")
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "config.json").write_text('{"model_type": "internvl_chat", "auto_map": {}}')
    with pytest.raises(JudgeError, match="InternVL2_5-8B-MPO-hf"):
        JUDGES.build("vlm", model=str(remote))


def test_repo_id_resolves_from_the_hf_cache_only(tmp_path, monkeypatch):
    import huggingface_hub.constants as hf_constants

    folder = write_tiny_vlm(tmp_path / "src", "qwen2_5_vl")
    snapshot = tmp_path / "hub" / "models--someone--tiny-vl" / "snapshots" / ("0" * 40)
    shutil.copytree(folder, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    judge = JUDGES.build("vlm", model="someone/tiny-vl", max_new_tokens=2)
    assert judge.info()["model"] == "someone/tiny-vl" and judge.folder == snapshot
    assert vlm_mod.resolve_model("hf://someone/tiny-vl")[0] == snapshot
