"""The small networks behind the micro-world judges (pure torch; trained by ``hubkit_micro.train_judges``).

All image towers take float RGB in [0, 1], [n, 3, 64, 64] (other sizes are resized).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

IMAGE_SIZE = 64
# ImageNet-ish normalisation constants; fixed so that loading never depends on data statistics
_MEAN = (0.5, 0.5, 0.5)
_STD = (0.25, 0.25, 0.25)


def _cbr(i: int, o: int, k: int, s: int, p: int) -> list[nn.Module]:
    return [nn.Conv2d(i, o, k, s, p, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]


class ConvTower(nn.Module):
    """64 px RGB -> feature vector (avg ‖ max pooled): 5 conv layers, strides 2,2,1,2,1 (8×8 at the end)."""

    def __init__(self, widths=(24, 48, 64, 96, 128), spatial: bool = False):
        super().__init__()
        a, b, c, d, e = widths
        self.spatial = spatial
        self.body = nn.Sequential(
            *_cbr(3, a, 4, 2, 1), *_cbr(a, b, 3, 2, 1), *_cbr(b, c, 3, 1, 1), *_cbr(c, d, 3, 2, 1), *_cbr(d, e, 3, 1, 1)
        )
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)
        self.out_dim = (2 + 4 * spatial) * e

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != IMAGE_SIZE or x.shape[-2] != IMAGE_SIZE:
            x = F.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", antialias=True, align_corners=False)
        h = self.body((x - self.mean) / self.std)
        feats = [h.mean((2, 3)), h.amax((2, 3))]
        if self.spatial:  # where things are (captions say "on the left"): 2x2 average pooling
            feats.append(F.adaptive_avg_pool2d(h, 2).flatten(1))
        return torch.cat(feats, dim=1)


class DetectorNet(nn.Module):
    """Multi-label classifier: logits over ``world.ALL_LABELS``."""

    def __init__(self, num_labels: int, widths=(24, 48, 64, 96, 128), dropout: float = 0.1):
        super().__init__()
        self.tower = ConvTower(widths)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(self.tower.out_dim, num_labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.tower(x)))


class QualityNet(nn.Module):
    """One logit per image: high = clean render; score = 10·sigmoid(logit)."""

    def __init__(self, widths=(16, 24, 32, 48, 64)):
        super().__init__()
        self.tower = ConvTower(widths)
        self.head = nn.Linear(self.tower.out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.tower(x)).squeeze(-1)


class TextTower(nn.Module):
    """Token ids (remapped to a small caption vocabulary) -> embedding: a 2-layer pre-norm transformer,
    masked mean pooling, linear projection."""

    def __init__(self, vocab: int, dim: int = 64, embed_dim: int = 64, layers: int = 2, heads: int = 4,
                 context: int = 64):
        super().__init__()
        self.context = context
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.zeros(context, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, embed_dim)
        nn.init.normal_(self.pos, std=0.02)
        nn.init.normal_(self.tok.weight, std=0.05)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        ids, mask = ids[:, : self.context], mask[:, : self.context]
        h = self.tok(ids) + self.pos[: ids.shape[1]]
        h = self.encoder(h, src_key_padding_mask=~mask)
        h = self.norm(h)
        m = mask.unsqueeze(-1).float()
        return self.proj((h * m).sum(1) / m.sum(1).clamp(min=1.0))


class MicroClipNet(nn.Module):
    def __init__(self, vocab: int, embed_dim: int = 64, widths=(24, 48, 64, 96, 128), text_dim: int = 64,
                 text_layers: int = 2, text_heads: int = 4, context: int = 64):
        super().__init__()
        self.visual = ConvTower(widths, spatial=True)
        self.visual_proj = nn.Linear(self.visual.out_dim, embed_dim)
        self.text = TextTower(vocab, text_dim, embed_dim, text_layers, text_heads, context)
        self.logit_scale = nn.Parameter(torch.tensor(2.659))  # log(1/0.07), as CLIP
        self.embed_dim = embed_dim

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.visual_proj(self.visual(x))

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.text(ids, mask)


class MicroClipFIDFeature(nn.Module):
    """The micro-clip image tower as a torchmetrics FID/KID feature extractor.

    ``FrechetInceptionDistance(feature=MicroClipFIDFeature(...))`` passes ``update(imgs)`` straight to
    ``forward``: uint8 [n, 3, H, W] in [0, 255] (the default, ``normalize=False``) or float in [0, 1]
    (``normalize=True``). Returns the un-normalised image embedding [n, num_features] (float32).
    """

    def __init__(self, clip: MicroClipNet):
        super().__init__()
        self.clip = clip
        self.num_features = clip.embed_dim
        self.eval()

    def train(self, mode: bool = True):  # always an inference module (BatchNorm statistics stay fixed)
        return super().train(False)

    @torch.no_grad()
    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        if imgs.dtype == torch.uint8:
            x = imgs.float() / 255.0
        else:
            x = imgs.float()
        if x.dim() == 3:
            x = x.unsqueeze(0)
        return self.clip.encode_image(x).float()
