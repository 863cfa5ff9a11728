"""The shelf: known-bad checkpoints of the micro world, each with the aspect that must fail it.

A benchmark is only as good as the worst model it lets through. Each entry is built from the micro base by a
cheap, deterministic recipe that models one way an "erasure" can be bad, and ``tests/test_suites_meta.py`` runs the
suite on it at the ``ci`` budget and asserts the named aspect fails with a decided verdict (not inconclusive):

* ``does-nothing``: the base model itself (flagged before any image; fails faithfulness);
* ``destroyed``: the base UNet with heavy weight noise: "erased" by breaking everything (fails image quality);
* ``half-erased``: ESD stopped after 10 of its 400 steps (fails the target proportion: 0.45 against 0.91);
* ``name-only``: only the token embeddings of the concept's name are overwritten in the text encoder, so the name
  no longer draws it but the UNet still does (fails robustness: concept inversion finds it);
* ``esd-pointelli-overdone`` (shipped with the world): erases the neighbours too (fails pinpoint-ness);
* ``sld-pointelli`` (shipped): inference-time guidance, 1.44x the UNet work (fails efficiency).

    python -m hubkit_micro.shelf [NAME ...]      # rebuild the built entries into hubkit_micro/weights/shelf/
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from hubkit_micro import paths

SHELF_DIR = paths.WEIGHTS / "shelf"
CONCEPT = "Pointelli"

#: name -> (the aspect filter that must fail it, why it deserves to fail)
SHELF: dict[str, tuple[str, str]] = {
    "does-nothing": ("faithfulness and test_target_proportion and not vs_base", "the base model itself"),
    "destroyed": ("faithfulness and fid", "weight noise destroys every image"),
    "half-erased": ("faithfulness and test_target_proportion and not vs_base", "ESD stopped after 10 of 400 steps"),
    "name-only": ("robustness and concept-inversion", "only the name's token embeddings are overwritten"),
    "esd-pointelli-overdone": ("pinpoint and overall", "erases the neighbours too"),
    "sld-pointelli": ("efficiency and time", "1.44x the UNet work per image"),
}


def path_of(name: str) -> Path:
    """What ``--model`` takes for a shelf entry."""
    if name == "does-nothing":
        return paths.BASE
    if name in ("esd-pointelli-overdone", "sld-pointelli"):
        from hubkit_micro.check import _checkpoint_file

        return _checkpoint_file(paths.unlearned(name))
    folder = SHELF_DIR / name
    return next(iter(sorted(folder.glob("*.safetensors"))), folder)


def _write(out: Path, filename: str, state: dict, metadata: dict) -> Path:
    from safetensors.torch import save_file

    from hubkit.atomic import write_bytes, write_text

    out.mkdir(parents=True, exist_ok=True)
    meta = {k: (v if isinstance(v, str) else json.dumps(v)) for k, v in metadata.items()}
    tmp = out / f".{filename}.tmp"
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp), metadata=meta)
    write_bytes(out / filename, tmp.read_bytes())
    tmp.unlink()
    write_text(out / "hubkit.json", json.dumps(metadata, indent=1, sort_keys=True))
    return out / filename


def _base():
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline.from_pretrained(str(paths.BASE), safety_checker=None, local_files_only=True)


def build_destroyed(out: Path, *, noise: float = 1.0, seed: int = 0) -> Path:
    """The base UNet with Gaussian noise of ``noise`` times each tensor's own standard deviation added."""
    unet = _base().unet
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in unet.state_dict().items():
        scale = float(value.float().std()) if value.numel() > 1 else float(value.abs().mean())
        state[key] = value + noise * scale * torch.randn(value.shape, generator=gen)
    return _write(out, "unet.safetensors", state, {"method": "shelf:destroyed", "concept": CONCEPT,
                                                    "noise_std_ratio": noise, "seed": seed})


def build_name_only(out: Path, concept: str = CONCEPT) -> Path:
    """The text encoder's token embeddings of ``concept``'s name (every BPE piece of it) set to the vocabulary's mean
    embedding; nothing else changes. Stored as the changed embedding matrix only (``keys: changed``)."""
    pipe = _base()
    tok, enc = pipe.tokenizer, pipe.text_encoder
    pieces = sorted({i for word in concept.split() for i in tok(word, add_special_tokens=False).input_ids}
                    | set(tok(concept, add_special_tokens=False).input_ids))
    layer = enc.get_input_embeddings()
    with torch.no_grad():
        weight = layer.weight.detach().clone()
        weight[pieces] = weight.mean(0)
    key = "text_model.embeddings.token_embedding.weight"
    return _write(out, "text_encoder.safetensors", {key: weight},
                  {"method": "shelf:name-only", "concept": concept, "keys": "changed",
                   "tokens": [tok.convert_ids_to_tokens(i) for i in pieces]})


def build_half_erased(out: Path, seed: int = 0) -> Path:
    """ESD-x with the shipped recipe stopped after a fortieth of its steps (a tenth still erased too much: 0.08)."""
    from hubkit_micro.build import SHIPPED
    from hubkit_micro.unlearn import unlearn

    options = dict(next(o for name, _, _, o in SHIPPED if name == "esd-pointelli"))
    options["steps"] = max(1, int(options["steps"]) // 40)
    unlearn("esd", base=paths.BASE, concept=CONCEPT, out=out, seed=seed, **options)
    return out


BUILDERS = {"destroyed": build_destroyed, "name-only": build_name_only, "half-erased": build_half_erased}


def build(names=()) -> None:
    for name in names or BUILDERS:
        print(f"[shelf] {name} -> {BUILDERS[name](SHELF_DIR / name)}", flush=True)


if __name__ == "__main__":
    build(sys.argv[1:])
