"""AC — Ablating Concepts in Text-to-Image Diffusion Models (Kumari et al., ICCV 2023), for any SD-1.x pipeline.

AC ablates a *target* concept ``c`` by redirecting it to an *anchor* concept ``c*`` ("a painting in the style of
Pointelli" -> "a painting").  The base model draws ``num_images`` images of the anchor prompts; each step noises a
batch of them to random timesteps and trains the copy ``Φ`` so that its prediction for the target prompt matches
the frozen base ``Φ̂`` on the anchor prompt (the paper's *model-based* variant, eq. 3)::

    L_abl = ‖Φ(x_t, c, t) − sg(Φ̂(x_t, c*, t))‖²          x_t = noised image of c*

``loss="noise"`` is the paper's *noise-based* variant (target: the added noise ε).  The optional regularisation
(``reg_weight``; on by default, as the official code's prior-preservation term) keeps the anchor itself::

    L_reg = ‖ε − Φ(x_t, c*, t)‖²

Only the cross-attention key/value projections move (``attn2.to_k``, ``attn2.to_v``: the paper's "xattn"
parameter group, which sees nothing but the text).  Several keywords train together; target prompts are
``templates`` filled with each keyword and each maps to ``anchor`` (or to its ``anchor_templates`` twin).

Defaults follow the paper / official code where they fit: 100 steps (HUB: 400 for celebrities), batch 8,
lr 2e-6 scaled by the batch size (the official ``--scale_lr``: 1.6e-5), 200 anchor images, Adam.  The anchor
defaults to HUB's alternatives by the concept's world category (style: "a painting", celebrity: "a middle aged
man", ip: "an animated character"; otherwise the empty prompt).

Simplified: the official code generates anchor *captions* with an LLM ("a painting of a house" ->
"... in the style of X"); here the target/anchor prompts are the templates.  Images are sampled with DDIM at
the base's step count and guidance (the official code uses the pipeline's own sampler), and augmentation /
gradient accumulation / mixed precision are left out.

The checkpoint is AC's published layout (``CustomDiffusionPipeline.save_pretrained(parameter_group="cross-attn")``,
HUB's ``models/ac/{target}.bin``): ``OUT/delta.bin`` = ``torch.save({"unet": {<every attn2.to_k/to_v weight by
diffusers name>: tensor}})``, plus ``OUT/hubkit.json`` (metadata).  ``--model OUT`` or ``--model OUT/delta.bin``
loads it (``unet-state-dict`` format, recognised as AC's layout); :func:`ac` returns the file's path.  An ``out`` ending in
``.bin``/``.pt`` writes just that file plus a ``<stem>.hubkit.json`` sidecar beside it.

"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from hubkit.atomic import write_bytes
from hubkit.unlearn.common import (
    META_FILE, Measure, add_common_arguments, atomic_write_json, base_metadata, cli_kwargs, concept_arg,
    encode_texts, load_base, resolve_concept, set_threads,
)
from hubkit.unlearn.finetune import Diffusion, loss_tail, pick, seed_all, trainable_copy
from hubkit.unlearn.registry import UNLEARNING, UnlearningMethod

DELTA_FILE = "delta.bin"
LOSSES = ("model", "noise")
#: HUB's anchor ("alternative") concepts by category
ANCHORS = {"style": "a painting", "celebrity": "a middle aged man", "ip": "an animated character"}


# --------------------------------------------------------------------------------------------
# AC
# --------------------------------------------------------------------------------------------
def kv_names(unet: torch.nn.Module) -> list[str]:
    """Every cross-attention key/value projection weight (``...attn2.to_k.weight`` / ``...attn2.to_v.weight``):
    exactly the keys of AC's published layout (SD-1.x has no biases there; a bias elsewhere stays frozen)."""
    names = [n for n, _ in unet.named_parameters() if n.endswith((".attn2.to_k.weight", ".attn2.to_v.weight"))]
    if not names:
        raise ValueError("the UNet has no cross-attention key/value projections (attn2.to_k / attn2.to_v)")
    return names


def default_anchor(category: str | None) -> str:
    return ANCHORS.get(category or "", "")


def ac(
    base,
    concept: str | Sequence[str],
    out: Path,
    *,
    anchor: str | None = None,
    templates: Sequence[str] = ("{}",),
    anchor_templates: Sequence[str] | None = None,
    loss: str = "model",
    steps: int = 100,
    lr: float = 2e-6,
    scale_lr: bool = True,
    batch_size: int = 8,
    num_images: int = 200,
    reg_weight: float = 1.0,
    sample_steps: int | None = None,
    sample_guidance: float | None = None,
    resolution: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    name: str | None = None,
    progress: bool = True,
) -> Path:
    """Ablate ``concept`` toward ``anchor`` in ``base``; write AC's ``delta.bin`` layout to ``out``; return the
    path ``--model`` takes (``out/delta.bin``).

    ``anchor``: the anchor prompt (``None``: HUB's alternative for the concept's world category, else "").
    ``templates``: target prompts (``{}`` = keyword); ``anchor_templates`` (parallel to ``templates``, ``{}`` =
    the anchor) give each target prompt its own anchor prompt, else every one maps to ``anchor``.
    ``num_images`` anchor images are drawn once, split evenly over the anchor prompts.  ``sample_steps`` /
    ``sample_guidance`` default to the base's ``hubkit.json`` (50 / 7.5 without one).  Deterministic for a given
    seed, device and torch thread count.
    """
    from tqdm.auto import tqdm

    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, not {loss!r}")
    if anchor_templates is not None and len(anchor_templates) != len(templates):
        raise ValueError("anchor_templates must be parallel to templates (one anchor template per template)")
    spec = resolve_concept(concept, name=name)
    b = load_base(base, device=device)
    pipe = b.pipe
    if anchor is None:
        anchor = default_anchor(spec.category)
    pairs: list[tuple[str, str]] = []
    for kw in spec.keywords:
        for i, tpl in enumerate(templates):
            target = tpl.format(kw) if "{}" in tpl else tpl
            if anchor_templates is None:
                dest = anchor
            else:
                at = anchor_templates[i]
                dest = at.format(anchor) if "{}" in at else at
            pairs.append((target, dest))
    pairs = list(dict.fromkeys(pairs))
    anchors = list(dict.fromkeys(d for _, d in pairs))
    per_anchor = max(1, -(-int(num_images) // len(anchors)))
    sample_steps = int(sample_steps or b.steps)
    sample_guidance = float(b.guidance if sample_guidance is None else sample_guidance)
    size = int(resolution) if resolution else None
    eff_lr = lr * batch_size if scale_lr else lr
    rng, gen = seed_all(seed, device)

    with Measure(device) as m:
        original = pipe.unet
        names = kv_names(original)
        unet, params = trainable_copy(original, names)
        optimizer = torch.optim.Adam(params, lr=eff_lr)
        diff = Diffusion(pipe, device=device, sample_steps=sample_steps, guidance=sample_guidance,
                         height=size or b.height, width=size or b.width)
        pools = diff.pools(original, anchors, per_anchor, gen)
        emb_t = encode_texts(pipe, [t for t, _ in pairs])
        emb_a = encode_texts(pipe, anchors)
        a_index = [anchors.index(d) for _, d in pairs]
        losses: list[float] = []
        bar = tqdm(range(steps), desc=f"AC {spec.name}", disable=not progress, leave=False)
        for _ in bar:
            i = rng.randrange(len(pairs))
            j = a_index[i]
            x0 = pick(pools[anchors[j]], batch_size, gen)
            xt, t, eps = diff.noised(x0, gen)
            cond = emb_t[i:i + 1].expand(batch_size, -1, -1)
            cond_a = emb_a[j:j + 1].expand(batch_size, -1, -1)
            if loss == "model":
                with torch.no_grad():
                    target = original(xt, t, encoder_hidden_states=cond_a).sample
            else:
                target = eps
            unet.train()
            optimizer.zero_grad(set_to_none=True)
            l_abl = F.mse_loss(unet(xt, t, encoder_hidden_states=cond).sample, target)
            total = l_abl
            if reg_weight:
                total = total + reg_weight * F.mse_loss(unet(xt, t, encoder_hidden_states=cond_a).sample, eps)
            total.backward()
            optimizer.step()
            losses.append(float(l_abl.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        bar.close()
        unet.eval()
        sd = unet.state_dict()
        delta = {"unet": {n: sd[n].detach().to("cpu").contiguous().clone() for n in sorted(names)}}

    meta = base_metadata(
        "ac", spec, b, variant="ac-xattn", loss=loss, anchor=anchor, prompts=[t for t, _ in pairs],
        anchors=anchors, steps=steps, lr=lr, scale_lr=scale_lr, effective_lr=eff_lr, batch_size=batch_size,
        num_images=per_anchor * len(anchors), reg_weight=reg_weight, sample_steps=sample_steps,
        sample_guidance=sample_guidance, seed=seed, final_loss=loss_tail(losses),
        train_seconds=round(m.seconds, 3), train_peak_mem_mb=round(m.peak_mem_mb, 1),
        format="ac-delta", device=str(device), threads=torch.get_num_threads(),
    )
    return write_ac_delta(Path(out), delta, meta)


def write_ac_delta(out: Path, delta: dict, metadata: dict) -> Path:
    """Write ``delta`` (``{"unet": {...}}``) with torch.save, then its ``hubkit.json``; return the weights path.

    ``out`` is a folder (``out/delta.bin`` + ``out/hubkit.json``) unless it ends in ``.bin``/``.pt``/``.pth``
    (that file + ``<stem>.hubkit.json`` beside it).
    """
    buf = io.BytesIO()
    torch.save(delta, buf)
    if out.suffix in (".bin", ".pt", ".pth"):
        weights, meta_path = out, out.with_name(f"{out.stem}.{META_FILE}")
    else:
        out.mkdir(parents=True, exist_ok=True)
        weights, meta_path = out / DELTA_FILE, out / META_FILE
    write_bytes(weights, buf.getvalue())
    atomic_write_json(meta_path, metadata)
    return weights


# --------------------------------------------------------------------------------------------
# CLI: `hubkit unlearn ac`
# --------------------------------------------------------------------------------------------
def add_arguments(parser) -> None:
    add_common_arguments(parser, out_help="checkpoint folder to write (delta.bin in AC's layout + hubkit.json)")
    parser.add_argument("--anchor", default=None,
                        help='anchor prompt the concept is mapped to (default: HUB\'s alternative for the category, '
                             'e.g. "a painting" for styles)')
    parser.add_argument("--template", action="append", default=None,
                        help="target prompt template with {} for the keyword (repeatable; default: the keyword)")
    parser.add_argument("--anchor-template", action="append", default=None,
                        help="anchor prompt template with {} for the anchor, one per --template")
    parser.add_argument("--loss", choices=LOSSES, default=None, help="model-based (default) or noise-based target")
    parser.add_argument("--steps", type=int, default=None, help="training steps (paper: 100; HUB celebrity: 400)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate before --scale-lr (paper: 2e-6)")
    parser.add_argument("--no-scale-lr", action="store_true", help="do not multiply lr by the batch size")
    parser.add_argument("--batch-size", type=int, default=None, help="paper: 8")
    parser.add_argument("--num-images", type=int, default=None, help="anchor images drawn by the base (paper: 200)")
    parser.add_argument("--reg-weight", type=float, default=None, help="weight of the anchor regulariser (0 = off)")
    parser.add_argument("--sample-steps", type=int, default=None, help="DDIM steps of the image sampler (default: base's)")
    parser.add_argument("--sample-guidance", type=float, default=None, help="CFG scale of the sampler (default: base's)")
    parser.add_argument("--no-progress", action="store_true")


_CLI_OPTIONS = {"anchor": "anchor", "template": "templates", "anchor_template": "anchor_templates", "loss": "loss",
                "steps": "steps", "lr": "lr", "batch_size": "batch_size", "num_images": "num_images",
                "reg_weight": "reg_weight", "sample_steps": "sample_steps", "sample_guidance": "sample_guidance"}


def run(args) -> int:
    set_threads(args.threads)
    kwargs = cli_kwargs(args, "ac", _CLI_OPTIONS)
    if args.no_scale_lr:
        kwargs["scale_lr"] = False
    out = ac(args.base, concept_arg(args), args.out, seed=args.seed, device=args.device, name=args.name,
             progress=not args.no_progress, **kwargs)
    print(out)
    return 0


UNLEARNING.register("ac", obj=UnlearningMethod(
    "ac", "AC: ablate the concept toward an anchor by fine-tuning the cross-attention key/value projections",
    ac, add_arguments, run))
