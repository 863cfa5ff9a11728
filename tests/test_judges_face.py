"""The ``face-identity`` judge: loading, the decision rule (with injected parts), no-face rules, calibrate()."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
from PIL import Image

from hubkit.errors import JudgeError
from hubkit.judges import JUDGES, Verdict, roles_of
from hubkit.judges.face import DEFAULT_THRESHOLD, FaceIdentityJudge, calibrate, match_rates

needs_facenet = pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("facenet_pytorch") is None,
    reason='facenet-pytorch is not installed (pip install "facenet-pytorch==2.5.3")')


def _noise(seed: int, size: int = 96) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def _flat(rgb=(128, 100, 90), size: int = 96) -> Image.Image:
    return Image.new("RGB", (size, size), rgb)


# --------------------------------------------------------------------------------------------------
# the decision rule, with a fake detector and embedder: a solid-colour image is a "face" whose identity is its
# colour (unless black: no face); identity vectors are fixed, so every similarity is known exactly

IDENTITIES = {(255, 0, 0): [1.0, 0.0, 0.0], (0, 255, 0): [0.0, 1.0, 0.0], (0, 0, 255): [0.0, 0.0, 1.0],
              (255, 255, 0): [0.6, 0.8, 0.0]}  # yellow: cos 0.6 with red, 0.8 with green


def _fake_find_faces(arrays):
    out = []
    for a in arrays:
        colour = tuple(int(c) for c in a[0, 0])
        out.append(None if colour == (0, 0, 0) else colour)
    return out


def _fake_embed(faces):
    return np.array([IDENTITIES[f] for f in faces]) * 3.0  # not unit length: the judge normalises


def _fake(threshold=0.5) -> FaceIdentityJudge:
    return FaceIdentityJudge.from_parts(_fake_find_faces, _fake_embed, threshold=threshold)


RED, GREEN, BLUE, YELLOW, BLACK = (_flat(c, 8) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0),
                                                         (0, 0, 0)])


def test_registered_as_a_reference_based_detector():
    assert "face-identity" in JUDGES.names()
    cls = JUDGES.get("face-identity")
    assert cls is FaceIdentityJudge and "Detector" in roles_of(cls)
    assert cls.references == 3 and "weights" in cls.weight_options
    assert DEFAULT_THRESHOLD == pytest.approx(1 - 1.04 ** 2 / 2, abs=1e-4)


def test_decision_rule_mean_of_reference_similarities():
    judge = _fake(threshold=0.7)
    verdicts = judge.detect([RED, RED, YELLOW, YELLOW, GREEN], "Brad Pitt",
                            references=[[RED, RED, RED], [BLUE, GREEN, BLUE], [RED, GREEN, GREEN], [RED, RED],
                                        [BLUE]])
    assert [v.label for v in verdicts] == ["yes", "no", "yes", "no", "no"]
    assert [v.score for v in verdicts] == pytest.approx([1.0, 0.0, (0.6 + 0.8 + 0.8) / 3, 0.6, 0.0])
    assert judge.counts == {"faces_found": 5, "no_face_query": 0, "no_face_references": 0, "unreadable": 0}
    # the boundary: score == threshold is "yes" (Verdict.from_score)
    assert _fake(threshold=0.6).detect([YELLOW], "x", references=[[RED]])[0].label == "yes"


def test_no_face_in_query_or_references_is_invalid_and_counted():
    judge = _fake()
    broken = Image.new("RGB", (4, 4))
    broken.load = lambda: (_ for _ in ()).throw(OSError("truncated"))  # an unreadable image
    verdicts = judge.detect([BLACK, RED, RED, RED, broken, BLACK], "c",
                            references=[[RED], [BLACK, BLACK], [], [BLACK, RED, BLACK], [RED], [BLACK]])
    assert [v.label for v in verdicts] == ["invalid", "invalid", "invalid", "yes", "invalid", "invalid"]
    assert verdicts[3].score == pytest.approx(1.0)  # only the references with a face count in the mean
    assert judge.counts == {"faces_found": 1, "no_face_query": 2, "no_face_references": 2, "unreadable": 1}
    assert judge.info()["counts"] == judge.counts
    judge.detect([RED], "c", references=[[RED]])  # the counters add up over calls
    assert judge.info()["counts"]["faces_found"] == 2


def test_references_are_required_and_aligned():
    judge = _fake()
    with pytest.raises(JudgeError, match="needs the base model's reference images") as exc:
        judge.detect([RED], "Brad Pitt")
    assert "\n" not in str(exc.value)
    with pytest.raises(JudgeError, match="2 reference lists for 1 images"):
        judge.detect([RED], "Brad Pitt", references=[[RED], [RED]])


def test_each_reference_image_is_embedded_once():
    calls = []

    def embed(faces):
        calls.append(len(faces))
        return _fake_embed(faces)

    refs = [RED, GREEN, BLUE]
    judge = FaceIdentityJudge.from_parts(_fake_find_faces, embed)
    verdicts = judge.detect([RED, GREEN, RED], "c", references=[refs, refs, list(refs)])
    assert len(verdicts) == 3 and calls == [3 + 3]  # one batch: 3 queries + 3 distinct references


# --------------------------------------------------------------------------------------------------
# calibrate()

def _pairs(rng, n: int, dim: int, same: bool, noise: float = 0.35):
    centres = rng.standard_normal((n, dim))
    others = centres if same else rng.standard_normal((n, dim))
    return np.stack([centres + noise * rng.standard_normal((n, dim)), others + noise * rng.standard_normal((n, dim))],
                    axis=1)


def test_calibrate_on_synthetic_embeddings():
    rng = np.random.default_rng(0)
    same, different = _pairs(rng, 500, 64, True), _pairs(rng, 2000, 64, False)
    threshold = calibrate(same, different, false_match_rate=0.01)
    tmr, fmr = match_rates(same, different, threshold)
    assert fmr <= 0.01 and tmr > 0.95
    # it is the lowest such threshold: a hair lower admits one false match too many (21 of 2000)
    assert match_rates(same, different, threshold - 1e-9)[1] == pytest.approx(21 / 2000)
    # similarities in, same answer; a stricter target gives a higher threshold; deterministic
    sims = [np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b) for a, b in different]
    assert calibrate([0.9], sims, 0.01) == pytest.approx(threshold, abs=1e-12)
    assert calibrate(same, different, 0.001) > threshold
    assert calibrate(same, different, 0.01) == threshold
    # fewer different pairs than 1 / rate: just above all of them
    assert calibrate([0.9], [0.1, 0.3], 0.001) == pytest.approx(0.3) and calibrate([0.9], [0.1, 0.3], 0.001) > 0.3
    with pytest.raises(ValueError):
        calibrate([], [0.1])


# --------------------------------------------------------------------------------------------------
# errors before anything is loaded

def test_missing_weights_is_one_line_naming_path_and_fix(tmp_path):
    missing = tmp_path / "nope" / "20180402-114759-vggface2.pt"
    with pytest.raises(JudgeError) as exc:
        JUDGES.build("face-identity", weights=missing)
    message = str(exc.value)
    assert "\n" not in message and str(missing) in message and "weights=" in message
    assert "github.com/timesler/facenet-pytorch/releases" in message
    with pytest.raises(JudgeError, match="never downloads"):
        JUDGES.build("face-identity")


def test_missing_package_names_the_install_command(tmp_path, monkeypatch):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "facenet_pytorch", None)  # import fails as if not installed
    with pytest.raises(JudgeError) as exc:
        JUDGES.build("face-identity", weights=weights)
    assert "\n" not in str(exc.value) and 'pip install "facenet-pytorch==2.5.3"' in str(exc.value)


# --------------------------------------------------------------------------------------------------
# the real parts: facenet-pytorch's MTCNN (its bundled weights) and InceptionResnetV1 from a random-weight file

@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    pytest.importorskip("facenet_pytorch")
    from hubkit.judges.testing_face import write_tiny_face

    return write_tiny_face(tmp_path_factory.mktemp("face"))


@pytest.fixture(scope="module")
def judge(weights):
    return JUDGES.build("face-identity", weights=weights, batch_size=4)


@needs_facenet
def test_loads_from_the_weights_file(judge, weights):
    info = judge.info()
    assert info["name"] == "face-identity" and info["threshold"] == DEFAULT_THRESHOLD
    assert info["weights"] == {"weights": str(weights)} and len(info["weights_sha256"]["weights"]) == 64
    assert judge.version.startswith("facenet-pytorch-") and info["weights_sha256"]["weights"][:16] in judge.version
    assert info["references"] == 3 and info["margin"] == 0.2 and set(info["counts"]) == {
        "faces_found", "no_face_query", "no_face_references", "unreadable"}


@needs_facenet
def test_a_wrong_state_dict_is_refused_in_one_line(tmp_path):
    import torch

    bad = tmp_path / "bad.pt"
    torch.save({"conv.weight": torch.zeros(2)}, bad)
    with pytest.raises(JudgeError, match="not an InceptionResnetV1 state dict") as exc:
        JUDGES.build("face-identity", weights=bad)
    assert "\n" not in str(exc.value) and str(bad) in str(exc.value)


def _centre_crop_faces(arrays):
    """Every image "has a face": the whole image, as the standardised 160 px crop the real detector gives."""
    import torch
    import torch.nn.functional as F

    out = []
    for a in arrays:
        t = torch.from_numpy(np.array(a)).permute(2, 0, 1).float()[None]
        out.append((F.interpolate(t, size=(160, 160), mode="bilinear", align_corners=False)[0] - 127.5) / 128.0)
    return out


@needs_facenet
def test_real_embedder_gives_labels_for_every_query(judge, monkeypatch):
    monkeypatch.setattr(judge, "find_faces", _centre_crop_faces)
    queries = [_noise(1), _noise(2), _flat()]
    refs = [[_noise(3), _noise(4), _noise(5)]] * 3
    verdicts = judge.detect(queries, "Brad Pitt", references=refs, category="celebrity")
    assert len(verdicts) == 3 and all(isinstance(v, Verdict) and v.label in ("yes", "no") for v in verdicts)
    assert all(-1.0 <= v.score <= 1.0 for v in verdicts)
    # the same image as its own reference: similarity 1
    assert judge.detect([queries[0]], "x", references=[[queries[0]]])[0].score == pytest.approx(1.0, abs=1e-5)


@needs_facenet
def test_real_detector_finds_no_face_in_noise_or_flat_colour(weights):
    judge = JUDGES.build("face-identity", weights=weights)
    queries = [_noise(10), _flat(), _flat((0, 0, 0), 128)]
    verdicts = judge.detect(queries, "Brad Pitt", references=[[_noise(11)], [_flat()], []])
    assert [v.label for v in verdicts] == ["invalid"] * 3
    assert judge.counts == {"faces_found": 0, "no_face_query": 3, "no_face_references": 0, "unreadable": 0}


@needs_facenet
def test_deterministic(weights, judge, monkeypatch):
    monkeypatch.setattr(judge, "find_faces", _centre_crop_faces)
    again = JUDGES.build("face-identity", weights=weights)
    monkeypatch.setattr(again, "find_faces", _centre_crop_faces)
    queries, refs = [_noise(20), _noise(21)], [[_noise(22), _noise(23)], [_noise(24)]]
    first = judge.detect(queries, "c", references=refs)
    assert judge.detect(queries, "c", references=refs) == first
    assert [v.score for v in again.detect(queries, "c", references=refs)] == pytest.approx([v.score for v in first],
                                                                                             abs=1e-6)


@needs_facenet
def test_real_crop_takes_the_largest_face_with_a_relative_margin(judge, monkeypatch):
    """MTCNN's boxes (stubbed here: no real face ships with the tests) -> the crop the embedder sees: the first
    (largest) box, grown by margin / 2 = 10% on each side, 160 px, standardised (x - 127.5) / 128."""
    parts = judge.find_faces.__self__
    boxes = {96: np.array([[20.0, 20.0, 60.0, 60.0], [0.0, 0.0, 5.0, 5.0]]), 128: None}
    seen = []

    def detect(batch):
        seen.append(batch.shape)
        return np.array([boxes[b.shape[0]] for b in batch], dtype=object), None

    monkeypatch.setattr(parts.mtcnn, "detect", detect)
    face = np.zeros((96, 96, 3), dtype=np.uint8)
    face[16:64, 16:64] = (255, 0, 0)  # the margin band (16..20 and 60..64) is red
    face[20:60, 20:60] = 255  # the detected box is white
    crops = judge.find_faces([face, np.zeros((128, 128, 3), dtype=np.uint8), face])
    assert sorted(seen) == [(1, 128, 128, 3), (2, 96, 96, 3)]  # one MTCNN batch per image size
    assert crops[1] is None and crops[0].shape == (3, 160, 160)
    assert np.allclose(crops[0].numpy(), crops[2].numpy())
    centre, corner = crops[0][:, 80, 80].numpy(), crops[0][:, 5, 5].numpy()
    assert centre == pytest.approx([(255 - 127.5) / 128] * 3, abs=1e-4)
    assert corner == pytest.approx([(255 - 127.5) / 128, -127.5 / 128, -127.5 / 128], abs=1e-4)


def test_an_image_smaller_than_the_smallest_face_has_no_face(tmp_path):
    """MTCNN's image pyramid is empty below ``min_face_size`` px (it raised inside facenet-pytorch): no face."""
    pytest.importorskip("facenet_pytorch")
    import numpy as np
    from PIL import Image

    from hubkit.judges import JUDGES
    from hubkit.judges.testing_face import write_tiny_face

    judge = JUDGES.build("face-identity", weights=str(write_tiny_face(tmp_path)))
    rng = np.random.default_rng(0)
    small = [Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)) for _ in range(2)]
    assert [v.label for v in judge.detect(small, "x", references=[small, small])] == ["invalid", "invalid"]
    assert judge.info()["counts"]["no_face_query"] == 2
