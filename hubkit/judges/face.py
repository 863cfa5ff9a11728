"""``face-identity``: a reference-based celebrity judge (MTCNN face + InceptionResnetV1 identity embedding).

HUB judges celebrities with GIPHY's celebrity detector (reference §4): MTCNN face detection with a 0.2 margin,
then a ResNet face recogniser with a fixed list of names; an image without a face is excluded from the
denominator. This judge needs no list of names: it compares the face in each query image with the faces in the
BASE model's images of the same prompt (``references``, ``references = 3`` per query image, wired by
``hubkit.aspects.common.references``), which show the celebrity whenever the base model can draw them.

Per query image:

1. MTCNN finds the faces; the largest is cropped with ``margin`` (relative: the crop is ``(1 + margin)`` times
   the detected box, ``margin / 2`` on each side; GIPHY's 0.2 by default), resized to 160 px and standardised
   ``(x - 127.5) / 128`` (facenet-pytorch's ``extract_face`` + ``fixed_image_standardization``, the input the
   VGGFace2 InceptionResnetV1 was converted for).
2. InceptionResnetV1 maps the crop to an L2-normalised 512-d identity embedding; the same for the largest face in
   each reference image.
3. score = the MEAN of the per-reference cosine similarities (over the references in which a face was found);
   "yes" when ``score >= threshold``.

Why the mean of pairwise similarities rather than the similarity to the mean reference embedding: a face
verification threshold is defined and published for PAIRS of faces, and ``calibrate`` measures pairs too; the
mean of pair similarities stays on that scale whatever the number of references, so one threshold means the same
with 1 or 3 references. The cosine to a (re-normalised) mean embedding is systematically higher than the pair
similarities, by an amount that grows with the number of references and shrinks with their spread, so a pair
threshold would not transfer to it.

Invalid verdicts (they leave the denominator, as HUB excludes images without a face), counted in ``info()``:
``no_face_query`` (no face in the query image), ``no_face_references`` (a face in the query but in none of its
references: the base model did not draw a face, nothing to compare with), ``unreadable`` (not an image). Each
decided image counts in ``faces_found``. The counts add up over the judge's lifetime (one run).

Threshold (``DEFAULT_THRESHOLD = 0.4592``): deepface's published verification threshold for "Facenet512"
(deepface/config/threshold.py: ``euclidean_l2 = 1.04``), which is this network (David Sandberg's facenet
20180402-114759, InceptionResnetV1 trained on VGGFace2, the checkpoint facenet-pytorch's ``vggface2`` weights are
converted from). On unit vectors the L2 distance d and the cosine c are tied exactly, c = 1 - d^2 / 2, so
1.04 is cosine 0.4592 with no rescaling. deepface also lists ``cosine = 0.30`` (distance, i.e. similarity 0.70)
for the same model, which users report rejecting same-person pairs (serengil/deepface issue #285); the L2 value
is the more permissive of the two and agrees with the usual same-identity range of facenet models. It is a
starting point: generated faces are not LFW photographs, so calibrate on your own pairs with ``calibrate(same,
different, false_match_rate=...)`` (e.g. base-model images of the same celebrity prompt vs different celebrities)
and pass the result as ``threshold``.

Library decision: facenet-pytorch (timesler), the MTCNN + InceptionResnetV1 family of GIPHY's detector, whose wheel
ships MTCNN's real P/R/O-Net weights (``facenet_pytorch/data/*.pt``), so face detection is real and offline.
facenet-pytorch 2.6.0 (the newest) pins ``torch<2.3, torchvision<0.18, numpy<2, Pillow<10.3`` and would downgrade
all of them; 2.5.3 declares unpinned ``numpy, requests, torchvision, pillow`` and installs alone next to torch 2.14 /
numpy 2 / Pillow 13 (checked with ``pip install --dry-run``). Its model code is the same as 2.6.0's (only a tqdm
fallback in the download helper differs). Install with::

    pip install "facenet-pytorch==2.5.3"

(an unpinned ``pip install facenet-pytorch`` resolves to 2.6.0 and downgrades torch). InceptionResnetV1's identity
weights are never downloaded: ``weights`` must name a local state dict, facenet-pytorch's
``20180402-114759-vggface2.pt`` (github.com/timesler/facenet-pytorch/releases/download/v2.2.9/; or the file that
``InceptionResnetV1(pretrained="vggface2")`` leaves in ``~/.cache/torch/checkpoints/`` on a machine with network),
as ``.pt``/``.pth`` (read with ``weights_only=True``) or ``.safetensors``. Its classifier head (``logits.*``, 8631
VGGFace2 identities) is not used and is dropped. ``hubkit.judges.testing_face.write_tiny_face`` writes a
random-weight file in that layout.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from hubkit.errors import JudgeError
from hubkit.hashing import file_sha256
from hubkit.judges.images import to_rgb_array
from hubkit.judges.registry import JUDGES, Judge, Verdict
from hubkit.judges.roles import Detector

INSTALL = 'pip install "facenet-pytorch==2.5.3"'
#: deepface's Facenet512 euclidean_l2 threshold 1.04 as a cosine similarity: 1 - 1.04**2 / 2
DEFAULT_THRESHOLD = 0.4592
FACE_SIZE = 160  # InceptionResnetV1's input (facenet's 160 x 160 crops)
WEIGHTS_HELP = ("facenet-pytorch's VGGFace2 InceptionResnetV1 state dict 20180402-114759-vggface2.pt "
                "(github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt, or "
                "~/.cache/torch/checkpoints/ after InceptionResnetV1(pretrained='vggface2') on a machine with network)")
COUNTERS = ("faces_found", "no_face_query", "no_face_references", "unreadable")


def _facenet():
    try:
        import facenet_pytorch
    except ImportError as exc:
        raise JudgeError(f"face-identity needs facenet-pytorch (MTCNN + InceptionResnetV1), which is not installed "
                         f"({exc}); fix: {INSTALL}") from exc
    return facenet_pytorch


def _similarities(pairs) -> np.ndarray:
    """Cosine similarities of ``pairs``: either similarities already (1-d), or embedding pairs ``[n, 2, d]`` /
    a sequence of ``(a, b)`` embeddings."""
    array = np.asarray(pairs, dtype=np.float64)
    if array.ndim == 1:
        return array
    if array.ndim != 3 or array.shape[1] != 2:
        raise ValueError(f"pairs must be similarities [n] or embedding pairs [n, 2, d], got shape {array.shape}")
    a, b = array[:, 0], array[:, 1]
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.sum(a * b, axis=1) / np.maximum(norms, 1e-12)


def match_rates(same_pairs, different_pairs, threshold: float) -> tuple[float, float]:
    """(true-match rate on ``same_pairs``, false-match rate on ``different_pairs``) at ``threshold``; ``>=`` matches."""
    same, different = _similarities(same_pairs), _similarities(different_pairs)
    tmr = float(np.mean(same >= threshold)) if same.size else math.nan
    fmr = float(np.mean(different >= threshold)) if different.size else math.nan
    return tmr, fmr


def calibrate(same_pairs, different_pairs, false_match_rate: float = 0.001) -> float:
    """The lowest threshold whose false-match rate on ``different_pairs`` is at most ``false_match_rate``.

    ``same_pairs`` / ``different_pairs``: face-embedding pairs of the same / of different people (``[n, 2, d]`` or
    ``(a, b)`` tuples; or their cosine similarities, 1-d). Among the thresholds meeting the false-match target the
    lowest is returned, which accepts the most same-person pairs (``match_rates`` gives both rates). At most
    ``floor(false_match_rate * n)`` different pairs score ``>=`` the result, so with fewer than
    ``1 / false_match_rate`` different pairs it is the threshold just above all of them. Deterministic.
    """
    same, different = _similarities(same_pairs), _similarities(different_pairs)
    if not same.size or not different.size:
        raise ValueError("calibrate needs at least one same-person and one different-person pair")
    if not 0.0 <= false_match_rate < 1.0:
        raise ValueError(f"false_match_rate must be in [0, 1), got {false_match_rate}")
    if np.isnan(same).any() or np.isnan(different).any():
        raise ValueError("calibrate: a pair has a NaN similarity")
    allowed = int(math.floor(false_match_rate * different.size + 1e-9))  # false matches the target tolerates
    ranked = np.sort(different)[::-1]
    if allowed >= ranked.size:
        return float(ranked[-1])
    # just above the (allowed + 1)-th highest different-pair similarity: it and all below it are rejected
    return float(np.nextafter(ranked[allowed], np.inf))


class _FacenetParts:
    """The real detector and embedder: facenet-pytorch's MTCNN (bundled weights) and an InceptionResnetV1."""

    def __init__(self, weights: Path, margin: float, min_face_size: int, device: str, batch_size: int):
        facenet = _facenet()
        import torch

        self.torch, self.facenet = torch, facenet
        self.device, self.batch_size, self.margin = torch.device(device), batch_size, margin
        self.min_face_size = int(min_face_size)
        try:
            self.mtcnn = facenet.MTCNN(image_size=FACE_SIZE, margin=0, min_face_size=min_face_size,
                                       select_largest=True, keep_all=False, post_process=True, device=self.device)
        except Exception as exc:
            raise JudgeError(f"face-identity: cannot build facenet-pytorch's MTCNN with its bundled weights "
                             f"({type(exc).__name__}: {exc}); fix: reinstall it: {INSTALL}") from exc
        self.mtcnn.eval()
        state = read_state_dict(weights, "face-identity", WEIGHTS_HELP, torch)
        net = facenet.InceptionResnetV1(pretrained=None, classify=False)
        state = {k: v for k, v in state.items() if not k.startswith("logits.")}
        try:
            net.load_state_dict(state, strict=True)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise JudgeError(f"face-identity: {weights} is not an InceptionResnetV1 state dict ({first}); expected "
                             f"{WEIGHTS_HELP}") from exc
        self.net = net.eval().to(self.device)

    def find_faces(self, arrays: Sequence[np.ndarray]) -> list:
        """The largest face of each RGB array as a standardised [3, 160, 160] tensor, or None (no face)."""
        from PIL import Image

        torch = self.torch
        out: list = [None] * len(arrays)
        margin_px = self.margin * FACE_SIZE / (1.0 + self.margin)  # extract_face's margin: final-image pixels
        for i, box in enumerate(largest_face_boxes(self.mtcnn, arrays, self.batch_size, self.min_face_size, torch)):
            if box is not None:
                face = self.facenet.extract_face(Image.fromarray(arrays[i]), box, FACE_SIZE, margin_px)
                out[i] = self.facenet.fixed_image_standardization(face)
        return out

    def embed(self, faces: Sequence) -> np.ndarray:
        """L2-normalised identity embeddings [n, 512] of standardised face crops."""
        torch = self.torch
        rows = []
        with torch.no_grad():
            for start in range(0, len(faces), self.batch_size):
                batch = torch.stack(list(faces[start:start + self.batch_size])).to(self.device)
                rows.append(self.net(batch).float().cpu())
        return torch.cat(rows).numpy().astype(np.float64) if rows else np.zeros((0, 512))


def largest_face_boxes(mtcnn, arrays: Sequence[np.ndarray], batch_size: int, min_face_size: int, torch) -> list:
    """MTCNN's largest face box of each RGB array, or None (no face); shared by the face judges."""
    out: list = [None] * len(arrays)
    groups: dict = {}
    for i, array in enumerate(arrays):  # MTCNN batches images of one size only
        groups.setdefault(array.shape, []).append(i)
    for shape, indices in groups.items():
        if min(shape[:2]) < min_face_size:  # MTCNN's image pyramid is empty: it cannot hold a face
            continue
        for start in range(0, len(indices), batch_size):
            chunk = indices[start:start + batch_size]
            with torch.no_grad():
                boxes, _ = mtcnn.detect(np.stack([arrays[i] for i in chunk]))
            for i, found in zip(chunk, boxes):
                if found is not None and len(found):
                    out[i] = found[0]
    return out


def read_state_dict(path: Path, who: str, expected: str, torch, wrappers: tuple[str, ...] = ("state_dict",),
                    hint: str = "") -> dict:
    """A state dict from ``.safetensors`` or a ``weights_only`` pickle (unwrapping the first of ``wrappers`` found);
    one JudgeError line naming the file and what was ``expected`` otherwise."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise JudgeError(f"{who}: cannot read weights {path} ({type(exc).__name__}: {first}); expected "
                         f"{expected}{hint}") from exc
    for key in wrappers:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not state:
        raise JudgeError(f"{who}: {path} holds a {type(state).__name__} with no state dict; expected {expected}")
    if all(str(k).startswith("module.") for k in state):  # saved from a DataParallel wrapper
        state = {str(k)[len("module."):]: v for k, v in state.items()}
    return state


@JUDGES.register("face-identity")
class FaceIdentityJudge(Judge, Detector):
    detects = ("the same person as the base model's images of the same prompt (MTCNN face, VGGFace2 "
               "InceptionResnetV1 identity cosine; reference-based celebrity judge)")
    weight_options = {"weights": WEIGHTS_HELP}
    #: base-model reference images of the same prompt wanted per query image
    references: int = 3

    def __init__(
        self,
        weights: str | Path | None = None,
        threshold: float = DEFAULT_THRESHOLD,
        margin: float = 0.2,
        min_face_size: int = 20,
        device: str = "cpu",
        batch_size: int = 32,
    ):
        if not weights:
            raise JudgeError(f"face-identity needs weights=<local {WEIGHTS_HELP}> and never downloads")
        path = Path(weights).expanduser()
        if not path.is_file():
            raise JudgeError(f"face-identity: weights file {path} not found; set weights=<local {WEIGHTS_HELP}>")
        self._options(threshold, margin, min_face_size, batch_size)
        parts = _FacenetParts(path, self.margin, self.min_face_size, device, self.batch_size)
        self.find_faces: Callable = parts.find_faces
        self.embed: Callable = parts.embed
        self.device = device
        self.weights = {"weights": path}
        from importlib.metadata import version

        self.version = f"facenet-pytorch-{version('facenet-pytorch')}+inception-resnet-v1:{file_sha256(path)[:16]}"

    @classmethod
    def from_parts(cls, find_faces: Callable, embed: Callable, threshold: float = DEFAULT_THRESHOLD,
                   margin: float = 0.2, min_face_size: int = 20, batch_size: int = 32,
                   version: str = "custom-parts") -> "FaceIdentityJudge":
        """The same decision rule with another face detector and embedder (tests, or another face stack).

        ``find_faces(arrays)``: one face (anything ``embed`` takes) or None per RGB uint8 array;
        ``embed(faces)``: one embedding row per face (they are L2-normalised here).
        """
        judge = cls.__new__(cls)
        judge._options(threshold, margin, min_face_size, batch_size)
        judge.find_faces, judge.embed = find_faces, embed
        judge.device, judge.weights, judge.version = "cpu", {}, version
        return judge

    def _options(self, threshold, margin, min_face_size, batch_size) -> None:
        self.threshold = float(threshold)
        if not -1.0 <= self.threshold <= 1.0:
            raise JudgeError(f"face-identity: threshold {threshold} is not a cosine similarity in [-1, 1]")
        self.margin = float(margin)
        if not 0.0 <= self.margin < 2.0:
            raise JudgeError(f"face-identity: margin {margin} must be in [0, 2) (relative to the face box; GIPHY: 0.2)")
        self.min_face_size = int(min_face_size)
        self.batch_size = int(batch_size)
        if self.min_face_size < 1 or self.batch_size < 1:
            raise JudgeError("face-identity: min_face_size and batch_size must be positive integers")
        self.counts = dict.fromkeys(COUNTERS, 0)

    def info(self) -> dict:
        return {**super().info(), "references": self.references, "margin": self.margin,
                "min_face_size": self.min_face_size, "aggregate": "mean of per-reference cosine similarities",
                "counts": dict(self.counts)}

    def _embeddings(self, images: Sequence) -> list:
        """Per image: a unit embedding row, ``"unreadable"`` or None (no face). Batched."""
        arrays = [to_rgb_array(im) for im in images]
        readable = [i for i, a in enumerate(arrays) if a is not None]
        out: list = ["unreadable"] * len(images)
        for i in readable:
            out[i] = None
        faces = self.find_faces([arrays[i] for i in readable]) if readable else []
        found = [(i, face) for i, face in zip(readable, faces) if face is not None]
        if found:
            rows = np.asarray(self.embed([face for _, face in found]), dtype=np.float64)
            if rows.ndim != 2 or rows.shape[0] != len(found):
                raise JudgeError(f"face-identity: the embedder returned shape {rows.shape} for {len(found)} faces")
            rows = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
            for (i, _), row in zip(found, rows):
                out[i] = row
        return out

    def detect(self, images: Sequence, concept: str = "", references: Sequence | None = None,
               category: str | None = None) -> list[Verdict]:
        if references is None:
            raise JudgeError("face-identity needs the base model's reference images of the same prompt "
                             "(references=...): it compares faces with them, so it can only be the concept judge "
                             "for celebrities, not a plain detector")
        if len(references) != len(images):
            raise JudgeError(f"face-identity: {len(references)} reference lists for {len(images)} images; "
                             "there must be one list per query image")
        # each distinct reference image is embedded once (the engine repeats a prompt's list for its images)
        unique: dict[int, int] = {}
        pool: list = []
        for refs in references:
            for ref in refs or ():
                if id(ref) not in unique:
                    unique[id(ref)] = len(pool)
                    pool.append(ref)
        embedded = self._embeddings(list(images) + pool)
        queries, ref_rows = embedded[:len(images)], embedded[len(images):]
        verdicts = []
        for query, refs in zip(queries, references):
            if isinstance(query, str):
                self.counts["unreadable"] += 1
                verdicts.append(Verdict.invalid())
                continue
            if query is None:
                self.counts["no_face_query"] += 1
                verdicts.append(Verdict.invalid())
                continue
            rows = [ref_rows[unique[id(ref)]] for ref in refs or ()]
            rows = [r for r in rows if not (r is None or isinstance(r, str))]
            if not rows:
                self.counts["no_face_references"] += 1
                verdicts.append(Verdict.invalid())
                continue
            self.counts["faces_found"] += 1
            score = float(np.mean(np.stack(rows) @ query))
            verdicts.append(Verdict.from_score(score, self.threshold))
        return verdicts
