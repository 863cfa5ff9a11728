"""Training, calibration and evaluation tables of ``micro-detector`` (the multi-label concept detector)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from hubkit_micro import judge_nets
from hubkit_micro.judge_data import _adamw, _batch_images, _log, _lr, _predict, diffusion_like

DETECTOR_WIDTHS = (16, 32, 48, 64, 96)
DETECTOR_POS_WEIGHT = 2.0
CALIB_FPR = 0.005          # per-label: threshold at the 99.5th percentile of all negatives' logits,
HARD_FPR = 0.01            # and at least the 99th percentile of the hard negatives' (look-alikes present) ...
CALIB_LOGIT_RANGE = (-2.5, 2.0)  # ... clamped to p in [0.076, 0.88]
HARD_BOOST = 2.0           # scenes with a weapon or a tool (the look-alike family) are drawn (1 + this) times as often


def train_detector(data, recon, steps: int, batch: int, seed: int, num_labels: int):
    imgs, _caps, labels = data
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed + 1)
    rng = np.random.default_rng([seed, 11])
    net = judge_nets.DetectorNet(num_labels, DETECTOR_WIDTHS)
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
    from hubkit_micro import world

    return [world.LABEL_INDEX[l] for l in world.WEAPONS + world.TOOLS]


def confusable(label: str) -> tuple[str, ...]:
    """Look-alikes of ``label``: the other labels of its kind, tools for weapons and weapons for tools, and
    the neighbours of any target concept it belongs to."""
    from hubkit_micro import world

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
    from hubkit_micro import world

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


def rates(pred: np.ndarray, truth: np.ndarray) -> dict:
    pos, neg = truth.astype(bool), ~truth.astype(bool)
    return {
        "tpr": round(float(pred[pos].mean()), 4) if pos.any() else None,
        "fpr": round(float(pred[neg].mean()), 4) if neg.any() else None,
        "n_pos": int(pos.sum()), "n_neg": int(neg.sum()),
    }


def detector_table(probs: np.ndarray, labels: np.ndarray, label_names, threshold: float) -> dict:
    """{"concepts": {target: rates}, "labels": {label: rates}} for one evaluation condition."""
    from hubkit_micro import world

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
