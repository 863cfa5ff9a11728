"""The ``giphy-celebrity`` judge: GIPHY's checkpoint layout, labels order, no-face rule, decision rule, errors."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
from PIL import Image

from hubkit.errors import JudgeError
from hubkit.judges import JUDGES, Verdict, roles_of
from hubkit.judges.giphy import GiphyCelebrityJudge, fold_name, giphy_crop, read_labels

needs_facenet = pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("facenet_pytorch") is None,
    reason='facenet-pytorch is not installed (pip install "facenet-pytorch==2.5.3")')

# GIPHY's format: "Name_[freebase id],tag id", in an order the judge must re-sort by the first column
LABELS_CSV = ("Labels,Index\n"
              "Tom_Cruise_[m.07r1h],7\n"
              "Brad_Pitt_[m.0c6qh],281\n"
              "Angelina_Jolie_[m.0f4vbz],124\n"
              "Brad_Paisley_[m.03gr7w],280\n")
SORTED = ["Angelina_Jolie_[m.0f4vbz]", "Brad_Paisley_[m.03gr7w]", "Brad_Pitt_[m.0c6qh]", "Tom_Cruise_[m.07r1h]"]

# torchvision ResNet-50 child -> its index in GIPHY's ``stem`` Sequential (children()[:-1]); relu/maxpool/avgpool
# (2, 3, 8) hold no parameters
_STEM = {"conv1": 0, "bn1": 1, "layer1": 4, "layer2": 5, "layer3": 6, "layer4": 7}


def _giphy_checkpoint(classes: int, with_batch_counts: bool = True) -> dict:
    """A random-weight checkpoint in the layout GIPHY's Trainer._save_state writes, built from torchvision directly
    (not from the judge's code): ResNetCenterLoss(AdaptResNetBottleneck(resnet50)).state_dict() keys."""
    import torch
    import torchvision

    torch.manual_seed(0)
    resnet = torchvision.models.resnet50(weights=None, num_classes=classes)
    state = {}
    for key, value in resnet.state_dict().items():
        child, rest = key.split(".", 1)
        if child == "fc":  # AdaptResNetBottleneck drops the original fc
            continue
        if rest.endswith("num_batches_tracked") and not with_batch_counts:  # torch <= 0.4.0 files have none
            continue
        state[f"model.stem.{_STEM[child]}.{rest}"] = value
    state["model.fc1.weight"], state["model.fc1.bias"] = torch.randn(256, 2048) * 0.01, torch.zeros(256)
    state["model.fc2.weight"], state["model.fc2.bias"] = torch.randn(classes, 256) * 0.01, torch.zeros(classes)
    state["center_loss_criterion.centers"] = torch.randn(classes, 256)
    return {"epoch": 3, "loss": 1.25, "optimizer_state": {"state": {}, "param_groups": [{"lr": 0.01, "params": [0]}]},
            "model_state": state}


@pytest.fixture(scope="module")
def giphy_files(tmp_path_factory):
    import torch

    folder = tmp_path_factory.mktemp("giphy")
    weights = folder / "best_model_states.pkl"
    torch.save(_giphy_checkpoint(len(SORTED), with_batch_counts=False), weights)
    labels = folder / "labels.csv"
    labels.write_text(LABELS_CSV)
    return weights, labels


@pytest.fixture(scope="module")
def real(giphy_files):
    weights, labels = giphy_files
    return JUDGES.build("giphy-celebrity", weights=str(weights), labels=str(labels), device="cpu", batch_size=2)


def test_registered_detector_with_two_weight_options():
    assert "giphy-celebrity" in JUDGES.names()
    cls = JUDGES.get("giphy-celebrity")
    assert cls is GiphyCelebrityJudge and "Detector" in roles_of(cls)
    assert set(cls.weight_options) == {"weights", "labels"}
    assert "resources.tar.gz" in cls.weight_options["weights"] and "labels.csv" in cls.weight_options["labels"]


def test_labels_sorted_like_giphy_and_folding(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(LABELS_CSV + "\n")  # a trailing blank line is ignored
    assert read_labels(path) == SORTED
    assert fold_name("Brad_Pitt_[m.0c6qh]") == fold_name("brad pitt") == fold_name(" BRAD_pitt ") == "brad pitt"
    assert fold_name("Brad Pitt") != fold_name("Brad Paisley")


@needs_facenet
def test_loads_giphy_checkpoint_and_info(real, giphy_files):
    info = real.info()
    assert info["name"] == "giphy-celebrity" and info["labels"] == 4 and info["threshold"] == 0.0
    assert info["version"].startswith("giphy-resnet50:")
    assert set(info["weights_sha256"]) == {"weights", "labels"}
    assert all(len(h) == 64 for h in info["weights_sha256"].values())
    assert real.labels == SORTED and real.knows("brad pitt") and not real.knows("Elon Musk")
    # the network: GIPHY's keys exactly, softmax over the 4 labels on a 224 crop
    state_keys = set(real.classify.__self__.net.state_dict())
    expected = set(_giphy_checkpoint(4)["model_state"])
    assert state_keys == expected
    probs = real.classify([np.full((224, 224, 3), 120, np.uint8)] * 3)
    assert probs.shape == (3, 4) and np.allclose(probs.sum(1), 1.0) and np.allclose(probs[0], probs[2])


@needs_facenet
def test_bare_state_dict_with_batch_counts_loads_too(tmp_path):
    import torch

    torch.save(_giphy_checkpoint(4)["model_state"], tmp_path / "bare.pt")
    (tmp_path / "labels.csv").write_text(LABELS_CSV)
    judge = JUDGES.build("giphy-celebrity", weights=str(tmp_path / "bare.pt"), labels=str(tmp_path / "labels.csv"))
    assert judge.info()["labels"] == 4


@needs_facenet
def test_images_without_faces_are_invalid_and_counted(real):
    flat = Image.new("RGB", (128, 128), (90, 140, 200))
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 256, (96, 96, 3), dtype=np.uint8))
    tiny = Image.new("RGB", (8, 8), (0, 0, 0))
    before = dict(real.counts)
    verdicts = real.detect([flat, noise, tiny, "not an image"], "Brad Pitt")
    assert [v.label for v in verdicts] == ["invalid"] * 4
    assert real.counts["no_face"] - before["no_face"] == 3
    assert real.counts["unreadable"] - before["unreadable"] == 1
    assert real.counts["faces_found"] == before["faces_found"]
    assert real.info()["counts"] == real.counts


@needs_facenet
def test_label_count_mismatch_and_unknown_concept(giphy_files, tmp_path):
    weights, labels = giphy_files
    three = tmp_path / "three.csv"
    three.write_text("Labels,Index\nA_[m.1],0\nB_[m.2],1\nC_[m.3],2\n")
    with pytest.raises(JudgeError, match="classifies 4 celebrities but the labels CSV names 3"):
        JUDGES.build("giphy-celebrity", weights=str(weights), labels=str(three))
    with pytest.raises(JudgeError, match=r"no label for \['Elon Musk'\] among the model's 4 celebrities"):
        JUDGES.build("giphy-celebrity", weights=str(weights), labels=str(labels), concepts=["Brad Pitt", "Elon Musk"])


def test_missing_files_one_line_error_with_path_and_fix(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text(LABELS_CSV)
    missing = tmp_path / "nope" / "best_model_states.pkl"
    with pytest.raises(JudgeError) as err:
        JUDGES.build("giphy-celebrity", weights=str(missing), labels=str(labels))
    text = str(err.value)
    assert "\n" not in text and str(missing) in text and "resources.tar.gz" in text and "weights=" in text
    with pytest.raises(JudgeError) as err:
        JUDGES.build("giphy-celebrity", weights=str(labels), labels=str(tmp_path / "labels2.csv"))
    assert "\n" not in str(err.value) and "labels2.csv" in str(err.value) and "labels=" in str(err.value)
    with pytest.raises(JudgeError, match="never downloads"):
        JUDGES.build("giphy-celebrity", labels=str(labels))
    with pytest.raises(JudgeError, match="cannot read weights"):
        JUDGES.build("giphy-celebrity", weights=str(labels), labels=str(labels))


# --------------------------------------------------------------------------------------------------
# the decision rule, with stubbed parts: a solid-colour image is a face whose class probabilities are fixed by
# its colour (black: no face)

PROBS = {(255, 0, 0): [0.1, 0.1, 0.7, 0.1],      # Brad Pitt, confident
         (0, 255, 0): [0.05, 0.5, 0.4, 0.05],    # Brad Paisley top-1, Brad Pitt second
         (0, 0, 255): [0.3, 0.2, 0.25, 0.25]}    # Angelina Jolie, Brad Pitt weak


def _stub(threshold=0.0) -> GiphyCelebrityJudge:
    def find_faces(arrays):
        return [None if tuple(a[0, 0]) == (0, 0, 0) else tuple(int(c) for c in a[0, 0]) for a in arrays]

    def classify(faces):
        return np.array([PROBS[f] for f in faces])

    return GiphyCelebrityJudge.from_parts(find_faces, classify, SORTED, threshold=threshold)


RED, GREEN, BLUE, BLACK = (Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 0, 0)])


def test_decision_top1_label_with_case_and_underscore_folding():
    judge = _stub()
    for concept in ("Brad Pitt", "brad_pitt", "BRAD PITT", "Brad_Pitt_[m.0c6qh]"):
        verdicts = judge.detect([RED, GREEN, BLUE, BLACK], concept)
        assert [v.label for v in verdicts] == ["yes", "no", "no", "invalid"]
        assert [v.score for v in verdicts[:3]] == pytest.approx([0.7, 0.4, 0.25])
    assert [v.label for v in judge.detect([RED, GREEN, BLUE], "Brad Paisley")] == ["no", "yes", "no"]
    assert [v.label for v in judge.detect([RED, GREEN, BLUE], "angelina jolie")] == ["no", "no", "yes"]
    assert judge.counts == {"faces_found": 4 * 3 + 6, "no_face": 4, "unreadable": 0}


def test_threshold_on_top1_probability():
    judge = _stub(threshold=0.5)
    assert [v.label for v in judge.detect([RED, BLUE], "Brad Pitt")] == ["yes", "no"]
    assert judge.detect([GREEN], "Brad Paisley")[0].label == "yes"  # 0.5 >= 0.5
    assert _stub(threshold=0.31).detect([BLUE], "Angelina Jolie")[0] == Verdict("no", 0.3)
    with pytest.raises(JudgeError, match="threshold"):
        _stub(threshold=1.5)


def test_unknown_concept_is_a_judge_error_naming_the_label_count():
    with pytest.raises(JudgeError, match="among the model's 4 celebrities"):
        _stub().detect([RED], "Elon Musk")


def test_giphy_crop_margin_and_size():
    array = np.zeros((100, 200, 3), np.uint8)
    array[20:80, 50:110] = 255  # the "face" box
    crop = giphy_crop(array, [50.0, 20.0, 110.0, 80.0], 0.2)  # 60 px box: 12 px margin, 6 each side
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    # 72 px crop of which 60 are white: the border rows/cols (6/72 of 224 ~ 18 px) are black
    assert crop[112, 112].tolist() == [255, 255, 255] and crop[2, 112].tolist() == [0, 0, 0]
    edge = giphy_crop(array, [-5.0, -5.0, 30.0, 30.0], 0.2)  # clipped at the image border
    assert edge.shape == (224, 224, 3)
    assert giphy_crop(array, [10.0, 10.0, 10.0, 10.0], 0.2) is None
