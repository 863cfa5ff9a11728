"""Train the micro world's three judges and write them to ``hubkit_micro/weights/judges/``.

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

Data and augmentations live in :mod:`hubkit_micro.judge_data`, each judge's training in
:mod:`hubkit_micro.train_detector`, :mod:`hubkit_micro.train_quality` and :mod:`hubkit_micro.train_clip`; this
module trains them in order, saves and measures them.

    python -m hubkit_micro.train_judges [--out DIR] [--seed 0] [--scale 1.0]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from hubkit_micro.judge_data import (  # noqa: F401 (re-exported)
    _log, _predict, degrade, diffusion_like, render_data, to_float, vae_reconstructions,
)
from hubkit_micro.train_clip import CLIP_CONTEXT, CLIP_EMBED, CLIP_WIDTHS, build_vocab, evaluate_clip, train_clip
from hubkit_micro.train_detector import (  # noqa: F401 (re-exported)
    CALIB_FPR, CALIB_LOGIT_RANGE, DETECTOR_POS_WEIGHT, DETECTOR_WIDTHS, HARD_BOOST, HARD_FPR, _worst,
    calibrate_detector, confusable, detector_table, train_detector,
)
from hubkit_micro.train_quality import QUALITY_WIDTHS, train_quality

THRESHOLD = 0.5

# steps at scale 1.0 (batch sizes below); sized for <= 8 min on one CPU thread in total
DETECTOR_STEPS, DETECTOR_BATCH = 5400, 32
QUALITY_STEPS, QUALITY_BATCH = 700, 32
CLIP_STEPS, CLIP_BATCH = 700, 64
N_TRAIN = 24000
N_EVAL = 6000
N_CALIB = 4000
N_VAE = 2048


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
    from hubkit_micro.judges import load_micro_net

    return load_micro_net(name, out_dir)[0]


def train_judges(out_dir: str | Path | None = None, seed: int = 0, *, scale: float = 1.0, n_train: int | None = None,
                 n_eval: int | None = None, vae_dir: str | Path | None = None, use_vae: bool = True) -> dict:
    """Train micro-detector, micro-quality and micro-clip; write weights + ``metrics.json`` to ``out_dir``.

    ``scale`` multiplies every step count (tests use ~0.01). Returns the metrics dict.
    """
    from hubkit_micro import paths, world
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hubkit_micro.train_judges", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None, help="output folder (default: the shipped hubkit_micro/weights/judges)")
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
