"""``giphy-celebrity``: GIPHY's celebrity detector (github.com/Giphy/celeb-detection-oss), HUB's celebrity judge.

HUB (reference §4, ``source/eval/eval_gcd.py``) runs GIPHY's detector on each image: MTCNN finds the faces, each
face is cropped with a relative margin of 0.2, resized to 224 x 224 and classified by GIPHY's ResNet-50 face
recogniser into ~2,300 named celebrities; an image with no face leaves the denominator; otherwise it is a hit
when the top-1 name equals the target, case-insensitive, after GIPHY's label ``Brad_Pitt_[m.0c6qh]`` is turned
into ``Brad Pitt`` (cut at ``_[``, ``_`` -> space).

This judge reproduces it from hubkit's own code, per image:

1. Faces: facenet-pytorch's MTCNN (a port of the same David Sandberg MTCNN with the same P/R/O-Net weights and
   GIPHY's settings: min face 20 px, thresholds 0.6/0.7/0.7, scale factor 0.709). The LARGEST face is kept.
2. Crop as GIPHY's ``FaceDetector.perform_single``: the box grows by ``int(side * margin)`` pixels per axis, half
   on each side, clipped to the image, corners truncated to integers.
3. Resize the crop to 224 x 224 with PIL bilinear (what ``scipy.misc.imresize(..., interp='bilinear')`` did),
   RGB, scaled to [0, 1] (``ToTensor``), NO mean/std normalisation (GIPHY's inference applies none).
4. GIPHY's network (``model_training/helpers/resnet_model.py`` + ``models/cnn/resnet.py``): torchvision ResNet-50
   without its ``fc``, its children (conv1, bn1, relu, maxpool, layer1-4, avgpool) as a ``Sequential`` ``stem``,
   then ``fc1`` 2048 -> 256 (the embedding) and ``fc2`` 256 -> number of labels; softmax over ``fc2``. Built here
   exactly from torchvision with the state-dict keys of GIPHY's ``ResNetCenterLoss`` wrapper:
   ``model.stem.{0,1,4,5,6,7}.*``, ``model.fc1.*``, ``model.fc2.*`` and ``center_loss_criterion.centers``
   [labels, 256] (loaded strictly, unused for the decision).
5. Label ``i`` of the softmax is the i-th row of the labels CSV after sorting the rows by their first column
   (GIPHY's ``Labels``); the ``Index`` column is not the model's index.
6. "yes" when the top-1 label names ``concept`` (folded: ``_[...]`` id cut, ``_`` and spaces folded, case-folded)
   and its probability is ``>= threshold`` (default 0: HUB takes the top-1 whatever its probability). ``score``:
   the softmax probability of the concept's label (the largest, if several labels fold to the concept's name).

Differences from GIPHY/HUB, on purpose: GIPHY clusters all faces of an image (GMM over the embeddings, initialised
at the class centres) and HUB reads the first cluster's top-1; with one face (the usual case for a celebrity
prompt) the first cluster is that face and the decision is identical. With several faces this judge takes the
largest face instead of reproducing the clustering. Face detection is facenet-pytorch's PyTorch MTCNN, not GIPHY's
TensorFlow one: same weights and thresholds, boxes may differ by float rounding.

Invalid verdicts (counted in ``info()["counts"]``): ``no_face`` (MTCNN found none; HUB excludes these images) and
``unreadable``. Each decided image counts in ``faces_found``.

Files (``weights`` and ``labels``; local only, nothing is downloaded): GIPHY's archive
https://s3.amazonaws.com/giphy-public/models/celeb-detection/resources.tar.gz (what GIPHY's
``examples/download_model.py`` fetches) holds ``face_recognition/best_model_states.pkl``, a ``torch.save`` of
``{"epoch", "loss", "optimizer_state", "model_state"}``; its ``model_state`` is read (with
``weights_only=True``). A bare state dict in ``.pt``/``.pth``/``.pkl`` or ``.safetensors`` is read too. The labels
are ``examples/resources/face_recognition/labels.csv`` in GIPHY's repository (header ``Labels,Index``).
Needs facenet-pytorch for MTCNN (see ``hubkit.judges.face``).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from hubkit.errors import JudgeError
from hubkit.hashing import file_sha256
from hubkit.judges.face import _facenet, largest_face_boxes, read_state_dict
from hubkit.judges.images import to_rgb_array
from hubkit.judges.registry import JUDGES, Judge, Verdict
from hubkit.judges.roles import Detector

FACE_SIZE = 224  # GIPHY's APP_FACE_SIZE and HUB's preprocess_image(image, 224)
EMBEDDING_SIZE = 256  # GIPHY's ResNetModel(embedding_size=256)
ARCHIVE_URL = "https://s3.amazonaws.com/giphy-public/models/celeb-detection/resources.tar.gz"
WEIGHTS_HELP = (f"GIPHY's celebrity recogniser face_recognition/best_model_states.pkl from {ARCHIVE_URL} "
                "(what examples/download_model.py of github.com/Giphy/celeb-detection-oss downloads and unpacks)")
LABELS_HELP = ("GIPHY's labels CSV examples/resources/face_recognition/labels.csv of "
               "github.com/Giphy/celeb-detection-oss (header 'Labels,Index'; the same file the model was trained with)")
COUNTERS = ("faces_found", "no_face", "unreadable")


def fold_name(name: str) -> str:
    """A label or concept as a comparable name: ``Brad_Pitt_[m.0c6qh]`` and ``brad  pitt`` -> ``brad pitt``."""
    text = str(name).strip()
    text = text.split("_[", 1)[0]  # GIPHY's Freebase id suffix, cut as HUB does
    return " ".join(text.replace("_", " ").split()).casefold()


def read_labels(path: Path) -> list[str]:
    """GIPHY's labels CSV as the model's class names: the rows (after the header) sorted by their first column."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [row for row in csv.reader(f)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise JudgeError(f"giphy-celebrity: cannot read labels {path} ({type(exc).__name__}: {exc}); expected "
                         f"{LABELS_HELP}") from exc
    names = [row[0] for row in rows[1:] if row and row[0].strip()]
    if not names:
        raise JudgeError(f"giphy-celebrity: labels {path} has no label rows after its header; expected {LABELS_HELP}")
    duplicates = sorted({n for n in names if names.count(n) > 1}) if len(set(names)) != len(names) else []
    if duplicates:
        raise JudgeError(f"giphy-celebrity: labels {path} repeats {duplicates[:5]}; expected {LABELS_HELP}")
    return sorted(names)


def build_network(num_classes: int):
    """GIPHY's recogniser (``ResNetCenterLoss(AdaptResNetBottleneck(resnet50))``) with the same state-dict keys."""
    import torch
    import torchvision

    class Bottleneck(torch.nn.Module):  # GIPHY's AdaptResNetBottleneck: resnet50 minus fc, fc1 (embedding), fc2
        def __init__(self):
            super().__init__()
            resnet = torchvision.models.resnet50(weights=None, num_classes=num_classes)
            self.stem = torch.nn.Sequential(*list(resnet.children())[:-1])
            self.fc1 = torch.nn.Linear(resnet.fc.in_features, EMBEDDING_SIZE)
            self.fc2 = torch.nn.Linear(EMBEDDING_SIZE, num_classes)

        def forward(self, x):
            embedding = self.fc1(torch.flatten(self.stem(x), 1))
            return self.fc2(embedding), embedding

    class CenterLoss(torch.nn.Module):  # holds only GIPHY's class centres (a parameter of the checkpoint)
        def __init__(self):
            super().__init__()
            self.centers = torch.nn.Parameter(torch.zeros(num_classes, EMBEDDING_SIZE))

    class Recognizer(torch.nn.Module):  # GIPHY's CenterLossAdapter: .model and .center_loss_criterion
        def __init__(self):
            super().__init__()
            self.model = Bottleneck()
            self.center_loss_criterion = CenterLoss()

        def forward(self, x):
            return torch.softmax(self.model(x)[0], dim=1)

    return Recognizer()


class _GiphyParts:
    """The real face finder (facenet-pytorch MTCNN) and GIPHY's recogniser."""

    def __init__(self, weights: Path, num_labels: int, margin: float, device: str, batch_size: int):
        facenet = _facenet()
        import torch

        self.torch, self.device = torch, torch.device(device)
        self.margin, self.batch_size = margin, batch_size
        try:
            self.mtcnn = facenet.MTCNN(min_face_size=20, thresholds=[0.6, 0.7, 0.7], factor=0.709,
                                       select_largest=True, keep_all=False, device=self.device).eval()
        except Exception as exc:
            raise JudgeError(f"giphy-celebrity: cannot build facenet-pytorch's MTCNN ({type(exc).__name__}: {exc}); "
                             "fix: reinstall facenet-pytorch (see hubkit.judges.face)") from exc
        state = read_state_dict(
            weights, "giphy-celebrity", WEIGHTS_HELP, torch, wrappers=("model_state",),  # GIPHY: {"epoch", ..., "model_state"}
            hint="; a trusted file that torch.load(weights_only=True) refuses can be converted once: save its "
                 "'model_state' with safetensors.torch.save_file as .safetensors")
        fc2 = state.get("model.fc2.weight")
        if fc2 is not None and tuple(fc2.shape)[:1] != (num_labels,):
            raise JudgeError(f"giphy-celebrity: {weights} classifies {tuple(fc2.shape)[0]} celebrities but the labels "
                             f"CSV names {num_labels}; use the labels CSV that belongs to this model ({LABELS_HELP})")
        net = build_network(num_labels)
        try:
            net.load_state_dict(state, strict=True)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise JudgeError(f"giphy-celebrity: {weights} is not GIPHY's recogniser state dict ({first}); expected "
                             f"{WEIGHTS_HELP}") from exc
        self.net = net.eval().to(self.device)

    def find_faces(self, arrays: Sequence[np.ndarray]) -> list:
        """The largest face of each RGB array as GIPHY's 224 x 224 RGB uint8 crop, or None (no face)."""
        boxes = largest_face_boxes(self.mtcnn, arrays, self.batch_size, 20, self.torch)  # GIPHY's min face 20 px
        return [None if box is None else giphy_crop(array, box, self.margin) for array, box in zip(arrays, boxes)]

    def classify(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Softmax over GIPHY's labels [n, labels] for 224 x 224 RGB uint8 crops."""
        torch = self.torch
        rows = []
        with torch.no_grad():
            for start in range(0, len(crops), self.batch_size):
                batch = np.stack(list(crops[start:start + self.batch_size]))
                x = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0).to(self.device)
                rows.append(self.net(x).float().cpu())
        return torch.cat(rows).numpy().astype(np.float64) if rows else np.zeros((0, 0))


def giphy_crop(array: np.ndarray, box, margin: float) -> np.ndarray | None:
    """GIPHY's face crop (``FaceDetector.perform_single``) resized to 224 x 224 (PIL bilinear), or None if empty."""
    from PIL import Image

    x1, y1, x2, y2 = (float(v) for v in box[:4])
    height, width = array.shape[:2]
    x_margin, y_margin = int((x2 - x1) * margin), int((y2 - y1) * margin)
    left, top = int(max(x1 - x_margin / 2, 0)), int(max(y1 - y_margin / 2, 0))
    right, bottom = int(min(x2 + x_margin / 2, width)), int(min(y2 + y_margin / 2, height))
    crop = array[top:bottom, left:right, :3]
    if crop.shape[0] < 1 or crop.shape[1] < 1:
        return None
    resized = Image.fromarray(np.ascontiguousarray(crop)).resize((FACE_SIZE, FACE_SIZE), Image.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


@JUDGES.register("giphy-celebrity")
class GiphyCelebrityJudge(Judge, Detector):
    detects = ("the named celebrity: top-1 of GIPHY's celebrity recogniser (ResNet-50, ~2,300 names) on the largest "
               "MTCNN face (HUB's celebrity judge); no face: invalid")
    weight_options = {"weights": WEIGHTS_HELP, "labels": LABELS_HELP}

    def __init__(
        self,
        weights: str | Path | None = None,
        labels: str | Path | None = None,
        threshold: float = 0.0,
        margin: float = 0.2,
        device: str = "cpu",
        batch_size: int = 16,
        concepts: Sequence[str] | None = None,
    ):
        paths = {}
        for option, value, help_text in (("weights", weights, WEIGHTS_HELP), ("labels", labels, LABELS_HELP)):
            if not value:
                raise JudgeError(f"giphy-celebrity needs {option}=<local {help_text}> and never downloads")
            path = Path(value).expanduser()
            if not path.is_file():
                raise JudgeError(f"giphy-celebrity: {option} file {path} not found; set {option}=<local {help_text}>")
            paths[option] = path
        self._options(threshold, margin, batch_size)
        names = read_labels(paths["labels"])
        parts = _GiphyParts(paths["weights"], len(names), self.margin, device, self.batch_size)
        self._set_labels(names)
        self.find_faces: Callable = parts.find_faces
        self.classify: Callable = parts.classify
        self.device = device
        self.weights = dict(paths)
        from importlib.metadata import version

        self.version = (f"giphy-resnet50:{file_sha256(paths['weights'])[:16]}"
                        f"+facenet-pytorch-{version('facenet-pytorch')}-mtcnn")
        self.check_concepts(concepts or ())

    @classmethod
    def from_parts(cls, find_faces: Callable, classify: Callable, labels: Sequence[str], threshold: float = 0.0,
                   margin: float = 0.2, batch_size: int = 16, version: str = "custom-parts") -> "GiphyCelebrityJudge":
        """The same decision rule with another face finder and classifier (tests, or another face stack).

        ``find_faces(arrays)``: one face crop (anything ``classify`` takes) or None per RGB uint8 array;
        ``classify(crops)``: one row of probabilities over ``labels`` (in the model's order) per crop.
        """
        judge = cls.__new__(cls)
        judge._options(threshold, margin, batch_size)
        judge._set_labels(list(labels))
        judge.find_faces, judge.classify = find_faces, classify
        judge.device, judge.weights, judge.version = "cpu", {}, version
        return judge

    def _options(self, threshold, margin, batch_size) -> None:
        self.threshold = float(threshold)
        if not 0.0 <= self.threshold <= 1.0:
            raise JudgeError(f"giphy-celebrity: threshold {threshold} is not a probability in [0, 1] (HUB: 0)")
        self.margin = float(margin)
        if not 0.0 <= self.margin < 2.0:
            raise JudgeError(f"giphy-celebrity: margin {margin} must be in [0, 2) (relative to the face box; "
                             "GIPHY: 0.2)")
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise JudgeError("giphy-celebrity: batch_size must be a positive integer")
        self.counts = dict.fromkeys(COUNTERS, 0)

    def _set_labels(self, names: list[str]) -> None:
        self.labels = list(names)
        self._index: dict[str, list[int]] = {}
        for i, name in enumerate(self.labels):
            self._index.setdefault(fold_name(name), []).append(i)

    def knows(self, concept: str) -> bool:
        """Whether ``concept`` names one of the model's labels (after folding)."""
        return fold_name(concept) in self._index

    def check_concepts(self, concepts: Sequence[str]) -> None:
        """JudgeError naming the concepts the model has no label for (it could only ever answer "no" for them)."""
        unknown = [c for c in concepts if not self.knows(c)]
        if unknown:
            raise JudgeError(f"giphy-celebrity: no label for {unknown} among the model's {len(self.labels)} "
                             f"celebrities; it can only judge names in its labels CSV (e.g. {self.labels[0]!r})")

    def info(self) -> dict:
        return {**super().info(), "labels": len(self.labels), "margin": self.margin, "face": "largest MTCNN face",
                "counts": dict(self.counts)}

    def detect(self, images: Sequence, concept: str = "", references: Sequence | None = None,
               category: str | None = None) -> list[Verdict]:
        self.check_concepts([concept])
        wanted = self._index[fold_name(concept)]
        arrays = [to_rgb_array(im) for im in images]
        readable = [i for i, a in enumerate(arrays) if a is not None]
        faces = list(self.find_faces([arrays[i] for i in readable])) if readable else []
        if len(faces) != len(readable):
            raise JudgeError(f"giphy-celebrity: the face finder returned {len(faces)} results for "
                             f"{len(readable)} images")
        found = [(i, face) for i, face in zip(readable, faces) if face is not None]
        probs = np.zeros((0, len(self.labels)))
        if found:
            probs = np.asarray(self.classify([face for _, face in found]), dtype=np.float64)
            if probs.shape != (len(found), len(self.labels)):
                raise JudgeError(f"giphy-celebrity: the classifier returned shape {probs.shape} for {len(found)} faces "
                                 f"and {len(self.labels)} labels")
        row_of = {i: r for r, (i, _) in enumerate(found)}
        verdicts = []
        for i in range(len(images)):
            if arrays[i] is None:
                self.counts["unreadable"] += 1
                verdicts.append(Verdict.invalid())
                continue
            if i not in row_of:
                self.counts["no_face"] += 1
                verdicts.append(Verdict.invalid())
                continue
            self.counts["faces_found"] += 1
            row = probs[row_of[i]]
            top = int(np.argmax(row))
            hit = top in wanted and row[top] >= self.threshold
            verdicts.append(Verdict("yes" if hit else "no", float(max(row[j] for j in wanted))))
        return verdicts
