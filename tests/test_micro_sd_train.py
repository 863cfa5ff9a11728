"""Micro-SD training (hubkit_micro.train_sd): determinism, exact resume, and a loadable pipeline folder.

Runs the real training code at a test-only size (``MicroSDConfig.tiny()``: 32 px, a few k parameters) on a
stub world of coloured squares, so it does not depend on the renderer and takes a few seconds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hubkit_micro import train_sd as T  # noqa: E402
from hubkit_micro.sd_config import MicroSDConfig  # noqa: E402

_COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 70, 220)}
_WORDS = {
    "English": ("a {c} square", {"red": "red", "green": "green", "blue": "blue"}),
    "Spanish": ("un cuadrado {c}", {"red": "rojo", "green": "verde", "blue": "azul"}),
    "French": ("un carré {c}", {"red": "rouge", "green": "vert", "blue": "bleu"}),
    "German": ("ein {c} Quadrat", {"red": "rotes", "green": "grünes", "blue": "blaues"}),
    "Italian": ("un quadrato {c}", {"red": "rosso", "green": "verde", "blue": "blu"}),
    "Portuguese": ("um quadrado {c}", {"red": "vermelho", "green": "verde", "blue": "azul"}),
}


def stub_batch(rng: np.random.Generator, n: int):
    """Same contract as ``prompt_sets.training_batch``: (uint8 [n,64,64,3], captions, labels)."""
    imgs = np.full((n, 64, 64, 3), 235, np.uint8)
    captions, labels = [], []
    for i in range(n):
        colour = list(_COLOURS)[int(rng.integers(len(_COLOURS)))]
        side = int(rng.integers(16, 32))
        x, y = rng.integers(0, 64 - side, 2)
        imgs[i, y:y + side, x:x + side] = _COLOURS[colour]
        template, words = _WORDS[list(_WORDS)[int(rng.integers(len(_WORDS)))]]
        captions.append(template.format(c=words[colour]))
        labels.append(colour)
    return imgs, captions, labels


def stub_images(rng: np.random.Generator, n: int) -> np.ndarray:
    return stub_batch(rng, n)[0]


KW = dict(seed=3, vae_steps=4, dec_steps=3, unet_steps=6, n_train=40, config=MicroSDConfig.tiny(), vae_batch=4,
          unet_batch=4, data_fn=stub_batch, image_fn=stub_images, steps=3, guidance=4.0, quiet=True, threads=1)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    out = {}
    for f in sorted(folder.rglob("*.safetensors")):
        for k, v in load_file(str(f)).items():
            out[f"{f.parent.name}/{k}"] = v
    return out


def _assert_same(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys() and len(wa) > 0
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("microsd")
    return T.train_sd(root / "out", work_dir=root / "work", **KW)


def test_training_is_deterministic_from_seed(trained, tmp_path):
    again = T.train_sd(tmp_path / "out", work_dir=tmp_path / "work", **KW)
    _assert_same(trained, again)
    other = T.train_sd(tmp_path / "out2", work_dir=tmp_path / "work2", **{**KW, "seed": 4})
    wa, wo = _weights(trained), _weights(other)
    assert any(not torch.equal(wa[k], wo[k]) for k in wa), "a different seed gave identical weights"


def test_resume_from_checkpoint_continues_identically(trained, tmp_path):
    work = tmp_path / "work"
    kw = {**KW, "checkpoint_every_steps": 1000}
    with pytest.raises(T._Stopped):           # "crash" in the middle of the VAE stage
        T.train_sd(tmp_path / "out", work_dir=work, _stop_after_vae=2, **kw)
    assert list(work.glob("vae-*/ckpt.pt"))
    with pytest.raises(T._Stopped):           # resume the VAE, "crash" in the middle of the UNet stage
        T.train_sd(tmp_path / "out", work_dir=work, _stop_after_unet=4, **kw)
    (ck,) = work.glob("unet-*/ckpt.pt")
    assert torch.load(ck, weights_only=False)["step"] == 4
    resumed = T.train_sd(tmp_path / "out", work_dir=work, **kw)
    assert not list(work.glob("*/ckpt.pt")), "checkpoints are removed once a stage finishes"
    _assert_same(trained, resumed)


def test_unet_finetune_stage_continues_from_the_first_stage(trained, tmp_path):
    """The optional second UNet stage starts from stage 1's weights (reused from the work dir, not retrained),
    changes them, and is itself deterministic."""
    work = tmp_path / "work"
    T.train_sd(tmp_path / "stage1", work_dir=work, **KW)
    stage1_dirs = set(work.glob("unet-*"))
    kw = {**KW, "unet_finetune_steps": 3, "unet_finetune_lr": 1e-3}
    tuned = T.train_sd(tmp_path / "tuned", work_dir=work, **kw)
    assert len(set(work.glob("unet-*")) - stage1_dirs) == 1, "stage 2 gets its own cache entry"
    wt, w1 = _weights(tuned), _weights(trained)
    assert any(not torch.equal(wt[k], w1[k]) for k in wt if k.startswith("unet/"))
    _assert_same(tuned, T.train_sd(tmp_path / "again", work_dir=tmp_path / "work2", **kw))
    meta = json.loads((tuned / "hubkit.json").read_text())
    assert meta["unet_finetune_steps"] == 3 and meta["unet_steps"] == KW["unet_steps"]
    assert meta["threads"] == {"vae": 1, "unet_text": 1, "unet_finetune": 1}


def test_later_unet_stages_run_at_their_own_thread_count(trained, tmp_path):
    """The shipped recipe trains the first UNet stage on 1 thread and the second on 2; both are recorded."""
    kw = {**KW, "unet_finetune_steps": 2, "unet_finetune_threads": 2}
    before = torch.get_num_threads()
    torch.set_num_threads(3)  # neither stage's count, so a leak shows
    try:
        out = T.train_sd(tmp_path / "out", work_dir=tmp_path / "work", **kw)
        assert torch.get_num_threads() == 3, "train_sd leaked its thread count to the caller"
    finally:
        torch.set_num_threads(before)
    assert json.loads((out / "hubkit.json").read_text())["threads"] == {"vae": 1, "unet_text": 1, "unet_finetune": 2}


def test_saved_folder_loads_offline_and_generates(trained):
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(trained), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    meta = json.loads((trained / "hubkit.json").read_text())
    assert {"height", "width", "steps", "guidance", "train_seconds"} <= meta.keys()
    assert (meta["height"], meta["width"], meta["steps"], meta["guidance"]) == (32, 32, 3, 4.0)
    assert len(pipe.tokenizer) == 49408
    assert isinstance(pipe.scheduler, DDIMScheduler)
    assert pipe.scheduler.config.steps_offset == 1 and pipe.scheduler.config.clip_sample is False
    assert pipe.safety_checker is None and pipe.feature_extractor is None
    assert pipe.vae.config.scaling_factor == pytest.approx(meta["scaling_factor"])
    assert pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size
    assert not list(trained.rglob("*.bin")), "weights are safetensors"

    out = pipe(["a red square", "un cuadrado azul"], height=32, width=32, num_inference_steps=3,
               guidance_scale=4.0, generator=[torch.Generator().manual_seed(i) for i in range(2)],
               output_type="np").images
    assert out.shape == (2, 32, 32, 3) and np.isfinite(out).all()
    again = pipe(["a red square"], height=32, width=32, num_inference_steps=3, guidance_scale=4.0,
                 generator=torch.Generator().manual_seed(0), output_type="np").images
    assert np.abs(again[0] - out[0]).max() < 1e-4


def test_latent_shift_folded_into_the_vae_is_exact():
    """final_vae() moves the latents' mean into quant_conv/post_quant_conv without changing reconstructions."""
    from hubkit_micro.sd_config import build_vae

    cfg = MicroSDConfig.tiny()
    torch.manual_seed(0)
    raw = build_vae(cfg).eval()
    shift = torch.linspace(-1.0, 2.0, cfg.latent_channels)
    vae = T.final_vae(cfg, raw.state_dict(), {"shift": shift, "scale": 0.7})
    x = T.to_tensor(stub_images(np.random.default_rng(0), 4), 32)
    with torch.no_grad():
        z_raw = raw.encode(x).latent_dist.mean
        z = vae.encode(x).latent_dist.mean
        assert torch.allclose(z, z_raw - shift.view(1, -1, 1, 1), atol=1e-5)
        assert torch.allclose(vae.decode(z).sample, raw.decode(z_raw).sample, atol=1e-4)
    assert vae.config.scaling_factor == pytest.approx(0.7)


def test_shipped_base_folder_if_present():
    from hubkit_micro.paths import BASE

    if not (BASE / "model_index.json").exists():
        pytest.skip("micro SD not trained: python -m hubkit_micro.train_sd --out hubkit_micro/weights/base")
    from diffusers import StableDiffusionPipeline

    meta = json.loads((BASE / "hubkit.json").read_text())
    assert meta["height"] == meta["width"] == 64 and meta["steps"] > 0 and meta["guidance"] > 1
    assert T.folder_bytes(BASE) < 22e6  # base v5c: 21.4 MB (a UNet of widths 32/64/96)
    pipe = StableDiffusionPipeline.from_pretrained(str(BASE), local_files_only=True)
    assert len(pipe.tokenizer) == 49408
    assert pipe.unet.dtype == torch.float32
    pipe.set_progress_bar_config(disable=True)
    img = pipe("a photo of Zorbo", num_inference_steps=2, generator=torch.Generator().manual_seed(0),
               output_type="np").images
    assert img.shape == (1, 64, 64, 3)


def test_focus_weights_favour_multi_object_scenes_with_a_named_concept_kind():
    from hubkit_micro import world
    from hubkit_micro.render import labels, sample_scene

    rng = np.random.default_rng(0)
    plain = list(world.CHARACTERS + world.FACES)
    scenes = [sample_scene(rng, require=["Dario Voss"], n_objects=2),                     # face among others
              sample_scene(rng, require=["Pointelli"], exclude=plain, n_objects=2),       # styled, no face
              sample_scene(rng, require=["Zorbo"], n_objects=1),                          # alone
              sample_scene(rng, exclude=plain, style=None, n_objects=3)]                  # plain things
    assert T.focus_weights([labels(s) for s in scenes]).tolist() == [T.FOCUS_WEIGHT, T.FOCUS_WEIGHT, 1.0, 1.0]


def _variant_is_its_own_deterministic_stage(tmp_path, variant: dict) -> Path:
    """Train the two-stage recipe, then the same with ``variant``: the variant gets its own UNet cache entry (the
    plain stages are reused, not overwritten), changes the UNet, and reproduces in a fresh work dir."""
    work = tmp_path / "work"
    kw = {**KW, "unet_finetune_steps": 3, "unet_finetune_lr": 1e-3}
    plain = T.train_sd(tmp_path / "plain", work_dir=work, **kw)
    before = set(work.glob("unet-*"))
    out = T.train_sd(tmp_path / "variant", work_dir=work, **{**kw, **variant})
    assert len(set(work.glob("unet-*")) - before) == 1, f"{variant} gets its own cache entry"
    wv, wp = _weights(out), _weights(plain)
    assert any(not torch.equal(wv[k], wp[k]) for k in wv if k.startswith("unet/"))
    _assert_same(out, T.train_sd(tmp_path / "again", work_dir=tmp_path / "work2", **{**kw, **variant}))
    return out


def test_focus_stage_continues_from_the_finetune_stage(trained, tmp_path, monkeypatch):
    """The third UNet stage draws images by weight (the stub's labels are colours: favour the red squares),
    gets its own cache entry, changes the weights and is deterministic."""
    monkeypatch.setattr(T, "focus_weights", lambda labels: torch.tensor([4.0 if l == "red" else 1.0 for l in labels],
                                                                         dtype=torch.float64))
    focused = _variant_is_its_own_deterministic_stage(tmp_path, {"unet_focus_steps": 3})
    assert json.loads((focused / "hubkit.json").read_text())["unet_focus_weight"] == T.FOCUS_WEIGHT


def test_offset_noise_finetune_is_its_own_deterministic_stage(trained, tmp_path):
    """Offset noise in the second stage gets its own cache entry (the plain stage 2 is not reused), changes the
    weights, reproduces, and is recorded in hubkit.json."""
    offset = _variant_is_its_own_deterministic_stage(tmp_path, {"unet_finetune_offset_noise": 0.1})
    assert json.loads((offset / "hubkit.json").read_text())["unet_finetune_offset_noise"] == 0.1


def test_fused_adam_trains_every_stage_anew_and_reproduces(tmp_path):
    """torch's fused AdamW rounds the same update differently, so a fused recipe reuses only a plain recipe's
    renders (the latents follow its own VAE); it reproduces bit for bit in a fresh work dir, and hubkit.json says
    which optimiser ran."""
    work = tmp_path / "work"
    kw = {**KW, "unet_finetune_steps": 2, "unet_finetune_lr": 1e-3}
    T.train_sd(tmp_path / "plain", work_dir=work, **kw)
    before = set(work.iterdir())
    fused = T.train_sd(tmp_path / "fused", work_dir=work, **{**kw, "fused_adam": True})
    new = sorted(p.name.split("-")[0] for p in set(work.iterdir()) - before)
    assert new == ["dec", "lat", "unet", "unet", "vae"], f"every stage after the renders is new, not {new}"
    assert json.loads((fused / "hubkit.json").read_text())["fused_adam"] is True
    assert json.loads((tmp_path / "plain" / "hubkit.json").read_text())["fused_adam"] is False
    _assert_same(fused, T.train_sd(tmp_path / "again", work_dir=tmp_path / "work2", **{**kw, "fused_adam": True}))
