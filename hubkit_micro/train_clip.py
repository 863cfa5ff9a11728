"""Training and held-out evaluation of ``micro-clip`` (contrastive image/text model in six languages)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hubkit_micro import judge_nets
from hubkit_micro.judge_data import _adamw, _batch_images, _log, _lr, diffusion_like
from hubkit_micro.judge_text import build_lookup, clip_token_ids
from hubkit_micro.train_detector import DETECTOR_WIDTHS

CLIP_WIDTHS = DETECTOR_WIDTHS  # the CLIP image tower starts from the trained detector's tower
CLIP_EMBED = 64
CLIP_CONTEXT = 64


def build_vocab(tokenizer, captions) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(kept CLIP ids sorted, ids [n, context] in the small vocab, mask)."""
    from hubkit_micro import world

    ids, mask = clip_token_ids(tokenizer, captions, CLIP_CONTEXT)
    # make sure every lexicon word and zero-shot prompt is representable, not only those sampled
    extra = [f"a photo of {l}" for l in world.ALL_LABELS] + [f"a painting in the style of {s}" for s in world.STYLES]
    for lang in world.LANGUAGES[1:]:
        extra += [w for w, _ in (world.NOUNS[k][lang] for k in world.NOUNS)]
        extra += [world.ADJECTIVES[k][lang] for k in world.ADJECTIVES] + [world.PHRASES[k][lang] for k in world.PHRASES]
    e_ids, e_mask = clip_token_ids(tokenizer, extra, CLIP_CONTEXT)
    kept = torch.unique(torch.cat([ids[mask], e_ids[e_mask]]))
    lookup = build_lookup(kept, len(tokenizer))
    small = torch.where(mask, lookup[ids], torch.zeros_like(ids))
    return kept, small, mask


def train_clip(data, recon, steps: int, batch: int, seed: int, vocab: int, small_ids, mask, init_tower=None):
    imgs = data[0]
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 3)
    rng = np.random.default_rng([seed, 13])
    net = judge_nets.MicroClipNet(vocab, CLIP_EMBED, CLIP_WIDTHS, 64, 2, 4, CLIP_CONTEXT)
    if init_tower is not None:  # start from the detector's features: it already knows every label
        net.visual.load_state_dict(init_tower.state_dict())
    opt = _adamw(net, 2e-3)
    net.train()
    labels = torch.arange(batch)
    for step in range(steps):
        for grp in opt.param_groups:
            grp["lr"] = _lr(step, steps, 2e-3)
        idx = rng.integers(0, len(imgs), batch)
        x = diffusion_like(_batch_images(imgs, recon, idx, rng, 0.3), g, strength=0.7)
        length = int(mask[idx].sum(1).max())
        ti, tm = small_ids[idx, :length], mask[idx, :length]
        img = F.normalize(net.encode_image(x), dim=-1)
        txt = F.normalize(net.encode_text(ti, tm), dim=-1)
        logits = net.logit_scale.clamp(max=4.6052).exp() * img @ txt.T
        # identical captions in a batch are not negatives of each other
        loss = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 300 == 0 or step == steps - 1:
            _log(f"clip step {step}/{steps} loss {loss.item():.4f} scale {net.logit_scale.exp().item():.1f}")
    with torch.no_grad():
        net.logit_scale.clamp_(max=4.6052)
    return net.eval()


def evaluate_clip(weights_dir: Path, held, seed: int) -> dict:
    """Held-out retrieval: caption->image top-1 among 100, per language; matched vs shuffled CLIPScore."""
    from hubkit_micro.judges import MicroClipJudge
    from hubkit_micro.captions import captions_all
    from hubkit_micro.render import render, sample_scene

    judge = MicroClipJudge(weights_dir=weights_dir)
    rng = np.random.default_rng([seed, 3, 77])
    scenes = [sample_scene(rng) for _ in range(100)]
    imgs = np.stack([render(s, 1000 + i) for i, s in enumerate(scenes)])
    caps = [captions_all(s, np.random.default_rng([seed, i])) for i, s in enumerate(scenes)]
    img_f = judge.image_features(torch.from_numpy(imgs))
    out = {}
    for lang in caps[0]:
        txt_f = judge.text_features([c[lang] for c in caps])
        sim = txt_f @ img_f.T
        out[f"top1_{lang}"] = round(float((sim.argmax(1) == torch.arange(len(scenes))).float().mean()), 3)
    x, caps_h = held[0][:500], list(held[1][:500])
    matched = judge.score(torch.from_numpy(x), caps_h)
    perm = np.random.default_rng([seed, 4]).permutation(len(caps_h))
    shuffled = judge.score(torch.from_numpy(x), [caps_h[i] for i in perm])
    out.update({"clipscore_matched": round(float(matched.mean()), 2), "clipscore_shuffled": round(float(shuffled.mean()), 2),
                "matched_above_shuffled": round(float((matched > shuffled).float().mean()), 3)})
    return out
