"""Tiny random-weight checkpoints in the real layouts of the general-alignment scorers (for tests).

``write_tiny_pickscore(folder)`` saves, with ``save_pretrained``, a ``transformers.CLIPModel`` (PickScore_v1's
architecture: a CLIP-H fine-tune) built from a ``CLIPConfig`` with a two-layer text and vision tower and a small
projection, and a ``CLIPProcessor`` of the real kind: SD-1.x's CLIP tokenizer (``hubkit.tokenizer.clip_tokenizer``,
built offline; the same BPE vocabulary as ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``) and a ``CLIPImageProcessor``
with small sizes. ``JUDGES.build("pickscore", model=folder)`` loads it exactly as it loads PickScore_v1's folder.
Nothing is downloaded; the scores are meaningless.
"""

from __future__ import annotations

import math
from pathlib import Path

#: the tiny model's sizes (the real PickScore_v1: text 1024-d x 24 layers, vision 1280-d x 32 layers, 224 px, 1024-d)
TINY_PICKSCORE = {
    "text": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                 max_position_embeddings=77),
    "vision": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32,
                   patch_size=8),
    "projection_dim": 16,
}


def write_tiny_pickscore(folder: Path, seed: int = 0, *, processor: bool = True) -> Path:
    """Save a tiny random PickScore-layout checkpoint (model + processor) to ``folder``; returns ``folder``.

    ``processor=False`` saves the model alone (the layout of a model folder whose processor lives elsewhere, as
    PickScore's reference code takes it from the CLIP-ViT-H-14 repo); ``write_tiny_clip_processor`` writes one."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    from hubkit.tokenizer import CLIP_VOCAB_SIZE

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config={**TINY_PICKSCORE["text"], "vocab_size": CLIP_VOCAB_SIZE, "bos_token_id": 49406,
                     "eos_token_id": 49407, "pad_token_id": 49407, "projection_dim": TINY_PICKSCORE["projection_dim"]},
        vision_config={**TINY_PICKSCORE["vision"], "projection_dim": TINY_PICKSCORE["projection_dim"]},
        projection_dim=TINY_PICKSCORE["projection_dim"],
        logit_scale_init_value=math.log(100.0),  # PickScore_v1's learned scale is ~100 (exp of the stored log)
    )
    model = CLIPModel(config).eval()
    model.save_pretrained(folder)
    if processor:
        write_tiny_clip_processor(folder)
    return folder


def write_tiny_clip_processor(folder: Path) -> Path:
    """A ``CLIPProcessor`` (the real CLIP BPE tokenizer, a ``CLIPImageProcessor`` at the tiny model's 32 px) saved
    to ``folder``; returns ``folder``."""
    from transformers import CLIPImageProcessor, CLIPProcessor

    from hubkit.tokenizer import clip_tokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    size = TINY_PICKSCORE["vision"]["image_size"]
    image_processor = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    CLIPProcessor(image_processor=image_processor, tokenizer=clip_tokenizer()).save_pretrained(folder)
    return folder
