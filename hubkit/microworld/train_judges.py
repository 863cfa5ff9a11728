"""Train the micro world's three judges and write them to ``hubkit/microworld/weights/judges/``.

* ``micro-detector``  multi-label CNN over ``world.ALL_LABELS`` (BCE), trained on renders with augmentation
                      that imitates a small diffusion model's output (slight blur, noise, colour shifts,
                      small shifts) and, when the base model's VAE exists, on VAE reconstructions.
* ``micro-quality``   clean-vs-degraded regressor (blur, noise, colour washing, blotches, smears, blocks);
                      target = 1 - severity, score = 10·sigmoid(logit).
* ``micro-clip``      CLIP-like contrastive model on (render, caption) pairs in all six languages, with the
                      real CLIP tokenizer and a vocabulary cut down to the ids the captions use.

Everything is drawn from generators seeded by ``seed``; with one torch thread the result is
bit-identical from run to run on a given machine. Weights are written as float16 safetensors plus a
JSON config each; ``metrics.json`` records the held-out TPR/FPR table and the training times.

    python -m hubkit.microworld.train_judges [--out DIR] [--seed 0] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hubkit.judges import micro_nets
from hubkit.judges.micro_text import build_lookup, clip_token_ids

DETECTOR_WIDTHS = (16, 32, 48, 64, 96)
QUALITY_WIDTHS = (16, 24, 32, 48, 64)
CLIP_WIDTHS = DETECTOR_WIDTHS  # the CLIP image tower starts from the trained detector's tower
CLIP_EMBED = 64
CLIP_CONTEXT = 64
THRESHOLD = 0.5

# steps at scale 1.0 (batch sizes below); sized for <= 8 min on one CPU thread in total
DETECTOR_STEPS, DETECTOR_BATCH = 5400, 32
DETECTOR_POS_WEIGHT = 2.0
QUALITY_STEPS, QUALITY_BATCH = 700, 32
CLIP_STEPS, CLIP_BATCH = 700, 64
N_TRAIN = 24000
N_EVAL = 6000
N_CALIB = 4000
CALIB_FPR = 0.005          # per-label: threshold at the 99.5th percentile of all negatives' logits,
HARD_FPR = 0.01            # and at least the 99th percentile of the hard negatives' (look-alikes present) ...
CALIB_LOGIT_RANGE = (-2.5, 2.0)  # ... clamped to p in [0.076, 0.88]
HARD_BOOST = 2.0           # scenes with a weapon or a tool (the look-alike family) are drawn (1 + this) times as often
N_VAE = 2048


def _log(msg: str) -> None:
    print(f"[train_judges] {msg}", file=sys.stderr, flush=True)


def _training_batch():
    try:
        from hubkit.microworld.prompt_sets import training_batch
    except ImportError:  # prompt_sets re-exports it; captions defines it
        from hubkit.microworld.captions import training_batch
    return training_batch


def _lr(step: int, total: int, base: float, warmup: int = 100) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def to_float(images: np.ndarray) -> torch.Tensor:
    """uint8 [n,64,64,3] -> float [n,3,64,64] in [0,1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0).contiguous()


# -------------------------------------------------------------------------------------------------
# augmentations (batched torch ops, all randomness from ``g``)
# -------------------------------------------------------------------------------------------------
def _gauss_kernel(sigma: float) -> torch.Tensor:
    r = max(1, int(math.ceil(2.5 * sigma)))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma <= 0.05:
        return x
    k = _gauss_kernel(sigma)
    r = (len(k) - 1) // 2
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def _blur_per_sample(x: torch.Tensor, sigmas: torch.Tensor, levels=(0.0, 0.5, 0.8, 1.1, 1.5, 2.0, 2.6, 3.2)) -> torch.Tensor:
    lv = torch.tensor(levels)
    q = (sigmas.view(-1, 1) - lv.view(1, -1)).abs().argmin(1)
    out = x.clone()
    for j, s in enumerate(levels):
        idx = (q == j).nonzero().flatten()
        if len(idx) and s > 0:
            out[idx] = blur(x[idx], s)
    return out


def _shift(x: torch.Tensor, g: torch.Generator, max_px: int) -> torch.Tensor:
    if max_px <= 0:
        return x
    n = x.shape[0]
    p = max_px
    xp = F.pad(x, (p, p, p, p), mode="replicate")
    d = torch.randint(0, 2 * p + 1, (n, 2), generator=g)
    out = torch.empty_like(x)
    for i in range(n):
        dy, dx = int(d[i, 0]), int(d[i, 1])
        out[i] = xp[i, :, dy : dy + x.shape[2], dx : dx + x.shape[3]]
    return out


def diffusion_like(x: torch.Tensor, g: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """What a small diffusion model does to a render: slight blur, noise, colour shifts, small shifts."""
    n = x.shape[0]
    u = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    x = _shift(x, g, 2)
    sig = torch.where(u(n) < 0.55, u(n) * 1.1 * strength, torch.zeros(n))
    x = _blur_per_sample(x, sig)
    # colour: per-channel gain, brightness, contrast, saturation
    gain = 1 + (u(n, 3, 1, 1) - 0.5) * 0.14 * strength
    bright = (u(n, 1, 1, 1) - 0.5) * 0.12 * strength
    contrast = 1 + (u(n, 1, 1, 1) - 0.5) * 0.3 * strength
    sat = 1 + (u(n, 1, 1, 1) - 0.5) * 0.4 * strength
    m = x.mean((1, 2, 3), keepdim=True)
    x = (x - m) * contrast + m
    grey = x.mean(1, keepdim=True)
    x = grey + (x - grey) * sat
    x = x * gain + bright
    noise = torch.where(u(n, 1, 1, 1) < 0.6, u(n, 1, 1, 1) * 0.05 * strength, torch.zeros(n, 1, 1, 1))
    x = x + noise * torch.randn(x.shape, generator=g)
    return x.clamp_(0, 1)


def degrade(x: torch.Tensor, severity: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Quality degradations, one or two per image, strength growing with ``severity`` in [0,1]."""
    n = x.shape[0]
    u = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    out = x.clone()
    kinds = torch.randint(0, 6, (n, 2), generator=g)
    second = u(n) < 0.35
    for slot in range(2):
        for k in range(6):
            idx = ((kinds[:, slot] == k) & (second if slot == 1 else torch.ones(n, dtype=torch.bool))).nonzero().flatten()
            if len(idx) == 0:
                continue
            s = severity[idx].view(-1, 1, 1, 1)
            xi = out[idx]
            if k == 0:  # blur
                xi = _blur_per_sample(xi, 0.7 + 2.6 * severity[idx])
            elif k == 1:  # noise
                xi = xi + (0.04 + 0.26 * s) * torch.randn(xi.shape, generator=g)
            elif k == 2:  # colour washing: towards a flat tint, lower contrast and saturation
                tint = 0.35 + 0.5 * u(len(idx), 3, 1, 1)
                a = 0.25 + 0.6 * s
                grey = xi.mean(1, keepdim=True)
                xi = (1 - a) * (grey + (xi - grey) * (1 - a)) + a * tint
            elif k == 3:  # blotches
                m = len(idx)
                yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
                for _ in range(3):
                    cy, cx = u(m, 1, 1, 1) * 64, u(m, 1, 1, 1) * 64
                    r = 4 + 10 * u(m, 1, 1, 1) * (0.5 + s)
                    blob = torch.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2)))
                    col = u(m, 3, 1, 1)
                    alpha = (0.35 + 0.6 * s) * blob
                    xi = xi * (1 - alpha) + col * alpha
            elif k == 4:  # smear: a smooth random displacement field
                m = len(idx)
                coarse = torch.randn(m, 2, 4, 4, generator=g) * (0.03 + 0.12 * s.view(-1, 1, 1, 1))
                flow = F.interpolate(coarse, size=(64, 64), mode="bicubic", align_corners=False).permute(0, 2, 3, 1)
                base = torch.stack(torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="xy"), -1)
                xi = F.grid_sample(xi, base.unsqueeze(0) + flow, mode="bilinear", padding_mode="border", align_corners=True)
                xi = _blur_per_sample(xi, 0.3 + 1.2 * severity[idx])
            else:  # blocky / low resolution
                factor = (2 + (severity[idx] * 4).clamp(max=3.99).floor()).long()  # 2..5 px blocks
                for f in factor.unique().tolist():
                    sel = (factor == f).nonzero().flatten()
                    small = F.interpolate(xi[sel], size=(64 // f, 64 // f), mode="area")
                    xi[sel] = F.interpolate(small, size=(64, 64), mode="bilinear", align_corners=False)
            out[idx] = xi
    return out.clamp_(0, 1)


# -------------------------------------------------------------------------------------------------
# data
# -------------------------------------------------------------------------------------------------
def render_data(seed: int, n: int, stream: int):
    """(images uint8, captions, labels) from ``training_batch`` with a generator derived from (seed, stream)."""
    rng = np.random.default_rng([seed, stream, 0x4A554447])
    return _training_batch()(rng, n)


def vae_reconstructions(images: np.ndarray, vae_dir: Path, batch: int = 128) -> np.ndarray | None:
    """Round-trip ``images`` through the base model's VAE (posterior mode), or None if it is not built."""
    if not (vae_dir / "config.json").is_file():
        return None
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(str(vae_dir)).eval()
    out = []
    with torch.inference_mode():
        for s in range(0, len(images), batch):
            x = to_float(images[s : s + batch]) * 2 - 1
            z = vae.encode(x).latent_dist.mode()
            y = vae.decode(z).sample
            out.append(((y.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


# -------------------------------------------------------------------------------------------------
# training loops
# -------------------------------------------------------------------------------------------------
def _adamw(net, lr):
    decay = [p for n, p in net.named_parameters() if p.ndim > 1 and "pos" not in n]
    rest = [p for n, p in net.named_parameters() if not (p.ndim > 1 and "pos" not in n)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4}, {"params": rest, "weight_decay": 0.0}], lr=lr)


def _batch_images(imgs: np.ndarray, recon: np.ndarray | None, idx: np.ndarray, rng: np.random.Generator, p_recon: float):
    """float batch; a share ``p_recon`` of it comes from the VAE reconstructions of the same scenes."""
    x = to_float(imgs[idx])
    if recon is not None:
        sel = np.nonzero((idx < len(recon)) & (rng.random(len(idx)) < p_recon))[0]
        if len(sel):
            x[sel] = to_float(recon[idx[sel]])
    return x


def train_detector(data, recon, steps: int, batch: int, seed: int, num_labels: int):
    imgs, _caps, labels = data
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    rng = np.random.default_rng([seed, 11])
    net = micro_nets.DetectorNet(num_labels, DETECTOR_WIDTHS)
    opt = _adamw(net, 3e-3)
    y_all = torch.from_numpy(labels)
    pos_weight = torch.full((num_labels,), DETECTOR_POS_WEIGHT)
    w = 1.0 + HARD_BOOST * labels[:, _family_columns()].any(1)
    p_draw = w / w.sum()
    net.train()
    for step in range(steps):
        for grp in opt.param_groups:
            grp["lr"] = _lr(step, steps, 3e-3)
        idx = rng.choice(len(imgs), size=batch, p=p_draw)
        x = _batch_images(imgs, recon, idx, rng, 0.3)
        x = diffusion_like(x, g)
        loss = F.binary_cross_entropy_with_logits(net(x), y_all[idx], pos_weight=pos_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 500 == 0 or step == steps - 1:
            _log(f"detector step {step}/{steps} loss {loss.item():.4f}")
    return net.eval()


def _family_columns() -> list[int]:
    from hubkit.microworld import world

    return [world.LABEL_INDEX[l] for l in world.WEAPONS + world.TOOLS]


def confusable(label: str) -> tuple[str, ...]:
    """Look-alikes of ``label``: the other labels of its kind, tools for weapons and weapons for tools, and
    the neighbours of any target concept it belongs to."""
    from hubkit.microworld import world

    k = world.kind(label)
    same = {"thing": world.THINGS, "character": world.CHARACTERS, "face": world.FACES, "style": world.STYLES,
            "weapon": world.WEAPONS + world.TOOLS, "tool": world.TOOLS + world.WEAPONS}[k]
    out = set(same)
    for c in world.CONCEPTS.values():
        if label in c.labels:
            out.update(c.neighbours)
    out.discard(label)
    return tuple(l for l in world.ALL_LABELS if l in out)


def calibrate_detector(net, x_cal: torch.Tensor, y_cal: np.ndarray) -> list[float]:
    """Shift each label's bias so that p = 0.5 sits at the larger of the (1 - CALIB_FPR) quantile of its
    negatives' logits and the (1 - HARD_FPR) quantile of its hard negatives' (a look-alike in the scene), on a
    calibration set of diffusion-like renders disjoint from training and held-out data. Returns the shifts."""
    from hubkit.microworld import world

    logits = _predict(net, x_cal)
    y = torch.from_numpy(y_cal) > 0
    shifts = []
    for j, label in enumerate(world.ALL_LABELS):
        neg = ~y[:, j]
        t = float(torch.quantile(logits[neg, j], 1 - CALIB_FPR)) if neg.any() else 0.0
        cols = [world.LABEL_INDEX[l] for l in confusable(label)]
        hard = neg & y[:, cols].any(1)
        if int(hard.sum()) >= 50:
            t = max(t, float(torch.quantile(logits[hard, j], 1 - HARD_FPR)))
        shifts.append(min(max(t, CALIB_LOGIT_RANGE[0]), CALIB_LOGIT_RANGE[1]))
    with torch.no_grad():
        net.head.bias -= torch.tensor(shifts)
    return [round(v, 3) for v in shifts]


def train_quality(data, recon, steps: int, batch: int, seed: int):
    imgs = data[0]
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 2)
    rng = np.random.default_rng([seed, 12])
    net = micro_nets.QualityNet(QUALITY_WIDTHS)
    opt = _adamw(net, 3e-3)
    net.train()
    for step in range(steps):
        for grp in opt.param_groups:
            grp["lr"] = _lr(step, steps, 3e-3)
        idx = rng.integers(0, len(imgs), batch)
        x = _batch_images(imgs, recon, idx, rng, 0.3)
        clean = torch.rand(batch, generator=g) < 0.4
        sev = torch.rand(batch, generator=g)
        target = torch.where(clean, torch.ones(batch), 0.7 * (1 - sev))
        light = diffusion_like(x, g, strength=0.5)
        bad = degrade(x, sev, g)
        x = torch.where(clean.view(-1, 1, 1, 1), light, bad)
        loss = F.binary_cross_entropy_with_logits(net(x), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 300 == 0 or step == steps - 1:
            _log(f"quality step {step}/{steps} loss {loss.item():.4f}")
    return net.eval()


def build_vocab(tokenizer, captions) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(kept CLIP ids sorted, ids [n, context] in the small vocab, mask)."""
    from hubkit.microworld import world

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
    net = micro_nets.MicroClipNet(vocab, CLIP_EMBED, CLIP_WIDTHS, 64, 2, 4, CLIP_CONTEXT)
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


# -------------------------------------------------------------------------------------------------
# evaluation
# -------------------------------------------------------------------------------------------------
def _predict(net, x: torch.Tensor, fn=None, bs: int = 500) -> torch.Tensor:
    out = []
    with torch.inference_mode():
        for s in range(0, len(x), bs):
            out.append(net(x[s : s + bs]) if fn is None else fn(x[s : s + bs]))
    return torch.cat(out)


def rates(pred: np.ndarray, truth: np.ndarray) -> dict:
    pos, neg = truth.astype(bool), ~truth.astype(bool)
    return {
        "tpr": round(float(pred[pos].mean()), 4) if pos.any() else None,
        "fpr": round(float(pred[neg].mean()), 4) if neg.any() else None,
        "n_pos": int(pos.sum()), "n_neg": int(neg.sum()),
    }


def detector_table(probs: np.ndarray, labels: np.ndarray, label_names, threshold: float) -> dict:
    """{"concepts": {target: rates}, "labels": {label: rates}} for one evaluation condition."""
    from hubkit.microworld import world

    yes = probs >= threshold
    out = {"concepts": {}, "labels": {}}

    def hard_fpr(pred, truth, cols):
        hard = ~truth & (labels[:, cols] > 0).any(1)
        return {"fpr_lookalike": round(float(pred[hard].mean()), 4) if hard.any() else None, "n_lookalike": int(hard.sum())}

    for name, c in world.CONCEPTS.items():
        idx = [label_names.index(l) for l in c.labels]
        pred, truth = yes[:, idx].any(1), labels[:, idx].any(1)
        out["concepts"][name] = {**rates(pred, truth), **hard_fpr(pred, truth, [label_names.index(l) for l in c.neighbours])}
    for j, l in enumerate(label_names):
        truth = labels[:, j] > 0
        out["labels"][l] = {**rates(yes[:, j], truth), **hard_fpr(yes[:, j], truth, [label_names.index(x) for x in confusable(l)])}
    return out


def _worst(table: dict) -> dict:
    rows = list(table["concepts"].values()) + list(table["labels"].values())
    return {"min_tpr": min(r["tpr"] for r in rows if r["tpr"] is not None),
            "max_fpr": max(r["fpr"] for r in rows if r["fpr"] is not None)}


# -------------------------------------------------------------------------------------------------
# saving
# -------------------------------------------------------------------------------------------------
def _save(net, name: str, config: dict, out_dir: Path, extra: dict | None = None) -> Path:
    from safetensors.torch import save_file

    state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in net.state_dict().items()}
    for k, v in (extra or {}).items():
        state[f"extra.{k}"] = v.contiguous()
    path = out_dir / f"{name}.safetensors"
    # one metadata key: safetensors writes a map's keys in arbitrary order, which would change the file hash
    save_file(state, str(path), metadata={"format": f"hubkit-micro-judge/{name}"})
    (out_dir / f"{name}.json").write_text(json.dumps(config, indent=1, ensure_ascii=False) + "\n")
    path.chmod(0o644)  # safetensors writes 0600; these ship as package data
    return path


def _roundtrip(net, name, out_dir):
    """The network as shipped (float16 weights back in float32), so metrics describe the saved file."""
    from hubkit.judges.micro import load_micro_net

    return load_micro_net(name, out_dir)[0]


def train_judges(out_dir: str | Path | None = None, seed: int = 0, *, scale: float = 1.0, n_train: int | None = None,
                 n_eval: int | None = None, vae_dir: str | Path | None = None, use_vae: bool = True) -> dict:
    """Train micro-detector, micro-quality and micro-clip; write weights + ``metrics.json`` to ``out_dir``.

    ``scale`` multiplies every step count (tests use ~0.01). Returns the metrics dict.
    """
    from hubkit.microworld import paths, world
    from hubkit.tokenizer import clip_tokenizer

    out = Path(out_dir) if out_dir is not None else paths.JUDGES
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    t_all = time.perf_counter()
    timings: dict[str, float] = {}
    n_train = n_train or max(256, int(N_TRAIN * min(1.0, scale * 4)))
    n_eval = n_eval or max(256, int(N_EVAL * min(1.0, scale * 4)))
    steps = lambda s: max(2, int(round(s * scale)))  # noqa: E731
    label_names = list(world.ALL_LABELS)

    t = time.perf_counter()
    data = render_data(seed, n_train, 1)
    held = render_data(seed, n_eval, 2)
    calib = render_data(seed, max(256, int(N_CALIB * min(1.0, scale * 4))), 3)
    timings["render_s"] = time.perf_counter() - t

    t = time.perf_counter()
    vae_dir = Path(vae_dir) if vae_dir is not None else paths.BASE / "vae"
    recon = vae_reconstructions(data[0][: min(N_VAE, n_train)], vae_dir) if use_vae else None
    held_recon = vae_reconstructions(held[0][:1500], vae_dir) if recon is not None else None
    timings["vae_s"] = time.perf_counter() - t
    _log(f"data: {n_train} train / {n_eval} held-out renders, VAE reconstructions: {recon is not None}")

    # ---- detector
    t = time.perf_counter()
    det = train_detector(data, recon, steps(DETECTOR_STEPS), DETECTOR_BATCH, seed, len(label_names))
    x_cal = diffusion_like(to_float(calib[0]), torch.Generator().manual_seed(seed + 99))
    shifts = calibrate_detector(det, x_cal, calib[2])
    timings["detector_train_s"] = time.perf_counter() - t
    tower = det.tower
    det_cfg = {
        "name": "micro-detector", "arch": {"type": "detector", "widths": list(DETECTOR_WIDTHS)},
        "labels": label_names, "threshold": THRESHOLD, "seed": seed,
        "train": {"steps": steps(DETECTOR_STEPS), "batch": DETECTOR_BATCH, "n_train": n_train,
                  "pos_weight": DETECTOR_POS_WEIGHT, "hard_boost": HARD_BOOST,
                  "vae_reconstructions": recon is not None},
        "calibration": {"n": len(calib[0]), "condition": "diffusion_like", "fpr": CALIB_FPR, "hard_fpr": HARD_FPR,
                        "logit_range": list(CALIB_LOGIT_RANGE), "bias_shifts": dict(zip(label_names, shifts))},
    }
    _save(det, "micro-detector", det_cfg, out)
    det = _roundtrip(det, "micro-detector", out)
    g = torch.Generator().manual_seed(seed + 100)
    hx = to_float(held[0])
    conditions = {"clean": hx, "diffusion_like": diffusion_like(hx.clone(), g)}
    if held_recon is not None:
        conditions["vae_reconstruction"] = to_float(held_recon)
    tables = {}
    for cond, x in conditions.items():
        p = torch.sigmoid(_predict(det, x)).numpy()
        tables[cond] = detector_table(p, held[2][: len(x)], label_names, THRESHOLD)
        tables[cond]["worst"] = _worst(tables[cond])
        _log(f"detector {cond}: {tables[cond]['worst']}")

    # ---- quality
    t = time.perf_counter()
    qual = train_quality(data, recon, steps(QUALITY_STEPS), QUALITY_BATCH, seed)
    timings["quality_train_s"] = time.perf_counter() - t
    q_cfg = {"name": "micro-quality", "arch": {"type": "quality", "widths": list(QUALITY_WIDTHS)}, "seed": seed,
             "score": "10 * sigmoid(logit)",
             "train": {"steps": steps(QUALITY_STEPS), "batch": QUALITY_BATCH}}
    _save(qual, "micro-quality", q_cfg, out)
    qual = _roundtrip(qual, "micro-quality", out)
    g = torch.Generator().manual_seed(seed + 200)
    qx = hx[:1000]
    q_clean = 10 * torch.sigmoid(_predict(qual, qx))
    q_light = 10 * torch.sigmoid(_predict(qual, diffusion_like(qx.clone(), g)))
    q_bad = {}
    for sev in (0.25, 0.5, 1.0):
        q_bad[str(sev)] = 10 * torch.sigmoid(_predict(qual, degrade(qx, torch.full((len(qx),), sev), g)))
    quality_metrics = {
        "mean_clean": round(float(q_clean.mean()), 3), "mean_diffusion_like": round(float(q_light.mean()), 3),
        **{f"mean_degraded_{k}": round(float(v.mean()), 3) for k, v in q_bad.items()},
        "pairwise_clean_above_degraded_0.5": round(float((q_clean > q_bad["0.5"]).float().mean()), 4),
    }
    if held_recon is not None:
        quality_metrics["mean_vae_reconstruction"] = round(float((10 * torch.sigmoid(_predict(qual, to_float(held_recon[:1000])))).mean()), 3)
    _log(f"quality: {quality_metrics}")

    # ---- clip
    t = time.perf_counter()
    tok = clip_tokenizer()
    kept, small_ids, mask = build_vocab(tok, data[1])
    vocab = len(kept) + 2
    clip = train_clip(data, recon, steps(CLIP_STEPS), CLIP_BATCH, seed, vocab, small_ids, mask, init_tower=tower)
    timings["clip_train_s"] = time.perf_counter() - t
    c_cfg = {
        "name": "micro-clip",
        "arch": {"type": "clip", "vocab": vocab, "embed_dim": CLIP_EMBED, "widths": list(CLIP_WIDTHS), "text_dim": 64,
                 "text_layers": 2, "text_heads": 4, "context": CLIP_CONTEXT},
        "clip_vocab_size": len(tok), "tokenizer": "CLIP BPE 49408 (hubkit.tokenizer.clip_tokenizer)", "seed": seed,
        "train": {"steps": steps(CLIP_STEPS), "batch": CLIP_BATCH, "languages": list(world.LANGUAGES)},
    }
    _save(clip, "micro-clip", c_cfg, out, extra={"vocab_ids": kept.to(torch.int32)})
    clip_metrics = evaluate_clip(out, held, seed)
    _log(f"clip: {clip_metrics}")

    timings["total_s"] = time.perf_counter() - t_all
    timings = {k: round(v, 1) for k, v in timings.items()}
    sizes = {p.name: p.stat().st_size for p in sorted(out.glob("micro-*"))}
    metrics = {
        "seed": seed, "scale": scale, "threshold": THRESHOLD, "torch": torch.__version__, "threads": 1,
        "timings": timings, "sizes_bytes": sizes, "total_bytes": sum(sizes.values()),
        "detector": {"n_eval": n_eval, "conditions": tables,
                     "bar": {"tpr_min": 0.95, "fpr_max": 0.03}},
        "quality": quality_metrics, "clip": clip_metrics,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, ensure_ascii=False) + "\n")
    _log(f"done in {timings['total_s']} s; {metrics['total_bytes'] / 1e6:.2f} MB in {out}")
    return metrics


def evaluate_clip(weights_dir: Path, held, seed: int) -> dict:
    """Held-out retrieval: caption->image top-1 among 100, per language; matched vs shuffled CLIPScore."""
    from hubkit.judges.micro import MicroClipJudge
    from hubkit.microworld.captions import captions_all
    from hubkit.microworld.render import render, sample_scene

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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hubkit.microworld.train_judges", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None, help="output folder (default: the shipped hubkit/microworld/weights/judges)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every step count (for quick trials)")
    ap.add_argument("--no-vae", action="store_true", help="do not train on the base VAE's reconstructions")
    args = ap.parse_args(argv)
    m = train_judges(args.out, seed=args.seed, scale=args.scale, use_vae=not args.no_vae)
    print(json.dumps({"timings": m["timings"], "total_bytes": m["total_bytes"],
                      "detector_worst": {k: v["worst"] for k, v in m["detector"]["conditions"].items()}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
