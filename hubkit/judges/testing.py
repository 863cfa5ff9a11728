"""Tiny random-weight files in the real layouts of the registered judges, and a ``[judges]`` table using them.

For tests and examples (the judges' counterpart of ``hubkit.testing.tiny_pipeline``): every file is what the
real judge loads -- an open_clip state dict of a custom tiny ViT/text-transformer config with OpenAI's
QuickGELU, Q16's ``prompts.p`` (a pickled numpy array [2, d]), LAION's aesthetic MLP state dict, and
torchmetrics' InceptionV3 state dict (the real network; random weights, 95 MB) -- only smaller where the
architecture allows. Nothing is downloaded.

    folder = write_tiny_judges(tmp_path)          # returns the judges TOML path
    hubkit judges check --judges folder/judges.toml
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np

TINY_CLIP_ARCH = "hubkit-tiny-vit-quickgelu"
TINY_CLIP = {
    "embed_dim": 32,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def write_tiny_clip(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """(weights, config): a random open_clip model of ``TINY_CLIP`` saved as safetensors, and its JSON config."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = folder / f"{TINY_CLIP_ARCH}.json"
    config.write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(folder)
    torch.manual_seed(seed)
    model = open_clip.create_model(TINY_CLIP_ARCH, pretrained=None)
    with torch.no_grad():
        model.logit_scale.fill_(math.log(100.0))
    weights = folder / "tiny-clip.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    return weights, config


def write_q16_prompts(path: Path, dim: int = TINY_CLIP["embed_dim"], seed: int = 0) -> Path:
    """Q16's ``prompts.p`` layout: a pickled float16 numpy array [2, dim] (HUB's ``save_prompts``)."""
    rng = np.random.default_rng(seed)
    path.write_bytes(pickle.dumps(rng.standard_normal((2, dim)).astype(np.float16)))
    return path


def write_aesthetic_mlp(path: Path, input_size: int = TINY_CLIP["embed_dim"], seed: int = 0) -> Path:
    """LAION's aesthetic MLP state dict (``layers.0`` ... ``layers.7``) with random weights, as a ``.pth``."""
    import torch

    from hubkit.judges.aesthetic import aesthetic_mlp

    torch.manual_seed(seed)
    torch.save(aesthetic_mlp(input_size).state_dict(), path)
    return path


def write_inception(path: Path, seed: int = 0) -> Path:
    """torchmetrics' InceptionV3 (torch-fidelity's FID network) with random weights, as a ``.pth`` state dict."""
    import torch

    from hubkit.judges.inception import inception_network

    torch.manual_seed(seed)
    net = inception_network(None)
    with torch.no_grad():  # He initialisation: the default one shrinks activations ~3x per layer, to 1e-8 at the pool
        for module in net.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    torch.save(net.state_dict(), path)
    return path


def write_tiny_judges(folder: Path, *, nudity: str = "nudenet", inception_size: int = 75,
                      inception_feature: int = 2048, fid_reference: str | None = None, hub_judges: bool = False) -> Path:
    """Every file above in ``folder`` and ``folder/judges.toml``, a ``[judges]`` table filling every role with them
    (relative paths): clip-zeroshot for celebrity/style/IP and nouns, q16 for NSFW, ``nudity`` (nudenet, the
    real model from its wheel) for Nudity, clip-score, laion-aesthetic and inception (``inception_size`` px,
    ``inception_feature``-d: 64 keeps FID's bootstrap of covariance square roots cheap in end-to-end runs);
    ``fid_reference`` (relative to ``folder``) becomes the table's FID reference statistics.

    ``hub_judges``: HUB's own judge architectures where HUB has them: ``vlm`` (a tiny Qwen2.5-VL) for style and IP
    with three base-model references, ``vlm`` (a tiny InternVL) as the noun judge (references for pinpoint, the
    plain question for selective alignment), and ``face-identity`` (MTCNN's real weights, a random-weight
    InceptionResnetV1) for celebrities."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights, config = write_tiny_clip(folder)
    write_q16_prompts(folder / "prompts.p")
    write_aesthetic_mlp(folder / "aesthetic-mlp.pth")
    write_inception(folder / "inception.pth")
    clip = f'arch = "{TINY_CLIP_ARCH}"\npretrained = "{weights.name}"\nmodel_config = "{config.name}"\n'
    hub = {"noun": "clip", "celebrity": "clip", "style": "clip", "ip": "clip"}
    defines = ""
    if hub_judges:
        from hubkit.judges.testing_face import write_tiny_face
        from hubkit.judges.testing_vlm import write_tiny_vlm

        write_tiny_vlm(folder / "vlm-qwen2_5_vl", "qwen2_5_vl")
        write_tiny_vlm(folder / "vlm-internvl", "internvl")
        face = write_tiny_face(folder)
        hub = {"noun": "vlm-noun", "celebrity": "face", "style": "vlm", "ip": "vlm"}
        defines = f"""
[judges.define.vlm]
judge = "vlm"
model = "vlm-qwen2_5_vl"
references = 3
max_new_tokens = 8

[judges.define.vlm-noun]
judge = "vlm"
model = "vlm-internvl"
references = 3
max_new_tokens = 8

[judges.define.face]
judge = "face-identity"
weights = "{face.name}"
"""
    table = f"""# tiny random-weight judges in the real layouts (hubkit.judges.testing); relative paths
[judges]
noun = "{hub['noun']}"
alignment = "clip-score"
fid = "inception"
quality = "aesthetic"
{f'fid_reference = "{fid_reference}"' if fid_reference else ""}

[judges.concept]
celebrity = "{hub['celebrity']}"
style = "{hub['style']}"
ip = "{hub['ip']}"
nsfw = "q16"
"Nudity" = {{ judge = "{nudity}" }}

[judges.define.clip]
judge = "clip-zeroshot"
{clip}
[judges.define.clip-score]
judge = "clip-score"
{clip}
[judges.define.q16]
judge = "q16"
prompts = "prompts.p"
{clip}
[judges.define.aesthetic]
judge = "laion-aesthetic"
mlp = "aesthetic-mlp.pth"
{clip}
[judges.define.inception]
judge = "inception"
weights = "inception.pth"
input_size = {int(inception_size)}
feature = {int(inception_feature)}
{defines}"""
    path = folder / "judges.toml"
    path.write_text(table)
    return path
