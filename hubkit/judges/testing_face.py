"""A random-weight identity-network file for the ``face-identity`` judge, in the real layout (tests, examples).

``write_tiny_face(folder)`` writes facenet-pytorch's InceptionResnetV1 (the real architecture, 23.5 M parameters)
with random weights as a ``.pt`` state dict, the layout of ``20180402-114759-vggface2.pt``: every key of the
network plus a classifier head ``logits.weight`` / ``logits.bias``, which the judge drops. The real head has 8631
VGGFace2 classes (18 MB); this one has ``classes`` (8), so the file is about 94 MB instead of 107 MB. MTCNN needs
no file: its real weights ship inside the facenet-pytorch wheel. Nothing is downloaded.

    weights = write_tiny_face(tmp_path)
    judge = JUDGES.build("face-identity", weights=weights)
"""

from __future__ import annotations

from pathlib import Path


def write_tiny_face(folder: Path, seed: int = 0, classes: int = 8) -> Path:
    """``folder/inception-resnet-v1-random.pt``: InceptionResnetV1 with random weights (seeded), in the real layout."""
    import torch

    from hubkit.judges.face import _facenet

    facenet = _facenet()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    net = facenet.InceptionResnetV1(pretrained=None, classify=False).eval()
    state = dict(net.state_dict())
    head = torch.nn.Linear(512, classes)  # the real file's classifier head, with fewer classes
    state["logits.weight"], state["logits.bias"] = head.weight.detach(), head.bias.detach()
    path = folder / "inception-resnet-v1-random.pt"
    torch.save(state, path)
    return path
