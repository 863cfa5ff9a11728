"""ESD, UCE and SLD on a tiny random SD-1.x pipeline: checkpoints, parameter groups, closed form, determinism."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from collections.abc import Mapping

import pytest
import torch

from hubkit.unlearn import UNLEARNING
from hubkit.errors import CheckpointError
from hubkit.unlearn.common import UNET_FILE, read_checkpoint_metadata, resolve_concept
from hubkit.unlearn.esd import _batched, esd, esd_target, target_terms, trainable_names
from hubkit.unlearn.sld import sld
from hubkit.unlearn.uce import _embed, uce
from hubkit.models.sld import SLD_MEDIUM, SLDPipeline, load_sld
from hubkit.testing import save_tiny_pipeline, tiny_pipeline

REQUIRED_META = ("method", "concept", "steps", "seed", "train_seconds", "train_peak_mem_mb")
FAST_ESD = dict(steps=3, sample_steps=4, lr=1e-3, progress=False)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny models: one thread is fastest, and the machine is shared (more threads spin-wait under load)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return save_tiny_pipeline(tmp_path_factory.mktemp("tiny") / "base")


@pytest.fixture(scope="module")
def base_pipe():
    return tiny_pipeline()


@pytest.fixture(scope="module")
def esd_x(base_dir, tmp_path_factory):
    return esd(base_dir, "weapon", tmp_path_factory.mktemp("esd") / "esd-x", variant="x", seed=1, **FAST_ESD)


def _changed(base_pipe, ckpt) -> set[str]:
    state = load_unet_state_dict(ckpt)
    own = base_pipe.unet.state_dict()
    return {k for k, v in state.items() if not torch.equal(v, own[k])}


def _check_meta(ckpt, method):
    folder_meta = read_checkpoint_metadata(ckpt)
    header_meta = read_checkpoint_metadata(ckpt / "unet.safetensors")
    assert folder_meta == header_meta
    for key in REQUIRED_META:
        assert key in folder_meta, key
    assert folder_meta["method"] == method
    assert folder_meta["train_seconds"] > 0
    assert folder_meta["train_peak_mem_mb"] > 0
    return folder_meta


# --------------------------------------------------------------------------------------------
# ESD
# --------------------------------------------------------------------------------------------
def test_esd_x_writes_checkpoint_with_metadata(esd_x):
    meta = _check_meta(esd_x, "esd")
    assert meta["variant"] == "esd-x"
    assert meta["concept"] == "weapon"
    assert meta["keywords"] == ["weapon", "knife", "sword", "axe", "spear"]
    assert {"lr", "eta", "steps", "seed"} <= set(meta)
    assert sorted(p.name for p in esd_x.iterdir()) == ["hubkit.json", "unet.safetensors"]  # no temp files left


def test_esd_x_changes_only_cross_attention(esd_x, base_pipe):
    state = load_unet_state_dict(esd_x)
    assert state and all(".attn2." in k for k in state)
    assert set(state) == set(trainable_names(base_pipe.unet, "x"))
    changed = _changed(base_pipe, esd_x)
    assert changed and all(".attn2." in k for k in changed)


def test_esd_u_changes_only_non_cross_attention(base_pipe, tmp_path):
    ckpt = esd(base_pipe, ["knife", "sword"], tmp_path / "u", variant="u", seed=0, xt="noise", pool_size=2,
               keys="all", **FAST_ESD)
    state = load_unet_state_dict(ckpt)
    assert set(state) == set(base_pipe.unet.state_dict())            # keys="all": the full UNet
    changed = _changed(base_pipe, ckpt)
    assert changed
    assert not any(".attn2." in k or k.startswith(("time_embedding.", "conv_out.", "conv_norm_out.")) for k in changed)
    assert read_checkpoint_metadata(ckpt)["concept"] == "knife, sword"


def test_esd_is_deterministic(base_pipe, tmp_path):
    runs = [esd(base_pipe, "weapon", tmp_path / f"run{i}", variant="x", seed=s, **FAST_ESD)
            for i, s in enumerate((1, 1, 2))]
    a, b, c = (load_unet_state_dict(p) for p in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_esd_context_direction_changes_only_in_context_targets(base_pipe, tmp_path):
    """``direction="context"`` erases the keyword against the prompt without it; on the bare keyword (no context)
    the target is ESD's own, so the two directions train the same weights."""
    def run(tag, direction, templates):
        path = esd(base_pipe, "Zorbo", tmp_path / tag, variant="kv", seed=0, xt="noise", pool_size=1,
                   direction=direction, templates=templates, **FAST_ESD)
        return load_unet_state_dict(path), read_checkpoint_metadata(path)

    bare_kw, _ = run("bare-kw", "keyword", ("{}",))
    bare_ctx, meta = run("bare-ctx", "context", ("{}",))
    assert meta["direction"] == "context"
    assert all(torch.equal(bare_kw[k], bare_ctx[k]) for k in bare_kw)
    ctx_kw, _ = run("ctx-kw", "keyword", ("a photo of {}",))
    ctx_ctx, _ = run("ctx-ctx", "context", ("a photo of {}",))
    assert not all(torch.equal(ctx_kw[k], ctx_ctx[k]) for k in ctx_kw)
    with pytest.raises(ValueError, match="direction must be"):
        esd(base_pipe, "Zorbo", tmp_path / "bad", direction="prompt", **FAST_ESD)


@pytest.mark.parametrize("in_context, direction, asked, expected", [
    (False, "keyword", ["uncond"], lambda ec, e0, ek, er, eta: e0 - eta * (ec - e0)),
    (False, "context", ["uncond"], lambda ec, e0, ek, er, eta: e0 - eta * (ec - e0)),
    (True, "keyword", ["uncond", "keyword"], lambda ec, e0, ek, er, eta: ec - (eta + 1) * (ek - e0)),
    (True, "context", ["rest"], lambda ec, e0, ek, er, eta: ec - (eta + 1) * (ec - er)),
])
def test_esd_target_formulas_and_the_terms_each_branch_runs(in_context, direction, asked, expected):
    """The one target ESD, Receler and AdvUnlearn share: each branch's formula, and the frozen model run only for
    the terms that formula needs (the context branch never runs the empty prompt)."""
    conds = {name: torch.tensor([float(i)]) for i, name in enumerate(("uncond", "keyword", "rest"))}
    preds = {"uncond": torch.tensor([0.5]), "keyword": torch.tensor([2.0]), "rest": torch.tensor([1.25])}
    calls = []

    def eps(cond):
        name = next(n for n, c in conds.items() if c is cond)
        calls.append(name)
        return preds[name]

    ec, eta = torch.tensor([3.0]), 1.5
    got = esd_target(eps, ec, eta=eta, in_context=in_context, direction=direction, **conds)
    env = dict(ec=ec, e0=preds["uncond"], ek=preds["keyword"], er=preds["rest"], eta=eta)
    assert calls == asked
    assert list(target_terms(in_context, direction)) == asked   # what the training loop batches up front
    assert torch.equal(got, expected(**env))


def test_one_batched_forward_gives_each_triple_its_own_prediction(base_pipe):
    """ESD runs a step's frozen predictions (and its two trained ones) as one forward: each sample's prediction must be
    what its own call gives, timesteps and conditionings included."""
    unet, g = base_pipe.unet, torch.Generator().manual_seed(0)
    shape = (2, unet.config.in_channels, 8, 8)
    xs = [torch.randn(shape, generator=g) for _ in range(3)]
    ts = [torch.tensor(10), torch.tensor(500), torch.tensor(999)]
    cs = [torch.randn((1, 77, unet.config.cross_attention_dim), generator=g) for _ in range(3)]
    with torch.no_grad():
        batched = _batched(unet, xs, ts, cs, batch_size=2)
        alone = [unet(x, t, encoder_hidden_states=c.expand(2, -1, -1)).sample for x, t, c in zip(xs, ts, cs)]
    for b, a in zip(batched, alone):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_esd_checkpoint_loads_onto_base(esd_x, base_pipe):
    pipe = tiny_pipeline()
    apply_unet_state_dict(pipe.unet, load_unet_state_dict(esd_x))
    g = torch.Generator().manual_seed(0)
    out = pipe("a knife", num_inference_steps=2, generator=g, output_type="np").images
    assert np.isfinite(out).all()


# --------------------------------------------------------------------------------------------
# UCE
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def uce_ckpt(base_dir, tmp_path_factory):
    return uce(base_dir, "Zorbo", tmp_path_factory.mktemp("uce") / "uce", preserve=["Pipkin", "Mumblo"])


def test_uce_changes_only_key_value_projections(uce_ckpt, base_pipe):
    meta = _check_meta(uce_ckpt, "uce")
    assert meta["preserve"] == ["Pipkin", "Mumblo"] and meta["destination"] == ""
    state = load_unet_state_dict(uce_ckpt)
    assert state and all(k.endswith((".attn2.to_k.weight", ".attn2.to_v.weight")) for k in state)
    n_attn2 = sum(1 for n, _ in base_pipe.unet.named_modules() if n.endswith(".attn2"))
    assert len(state) == 2 * n_attn2
    assert _changed(base_pipe, uce_ckpt) == set(state)


@torch.no_grad()
def test_uce_maps_concept_to_destination_and_preserves_neighbours(uce_ckpt, base_pipe):
    state = load_unet_state_dict(uce_ckpt)
    emb, last = _embed(base_pipe, ["Zorbo", "", "Pipkin", "Mumblo"])
    c, dest, keep1, keep2 = (emb[i, last[i]] for i in range(4))
    modules = dict(base_pipe.unet.named_modules())
    for key, w in state.items():
        lin = modules[key.removesuffix(".weight")]
        target = lin(dest)
        before = (lin(c) - target).norm() / target.norm()
        after = (c @ w.T - target).norm() / target.norm()
        assert after < 0.15 and after < 0.25 * before, (key, float(before), float(after))
        for keep in (keep1, keep2):
            drift = (keep @ w.T - lin(keep)).norm() / lin(keep).norm()
            assert drift < 0.1, (key, float(drift))


def test_uce_is_deterministic_and_supports_aligned_tokens(uce_ckpt, base_pipe, tmp_path):
    again = load_unet_state_dict(uce(base_pipe, "Zorbo", tmp_path / "a", preserve=["Pipkin", "Mumblo"]))
    first = load_unet_state_dict(uce_ckpt)
    assert all(torch.equal(first[k], again[k]) for k in first)
    aligned = uce(base_pipe, "Zorbo", tmp_path / "b", preserve=[], tokens="aligned", destination="a creature")
    assert read_checkpoint_metadata(aligned)["tokens"] == "aligned"


# --------------------------------------------------------------------------------------------
# SLD
# --------------------------------------------------------------------------------------------
def _images(pipe, prompts, **kw):
    gens = [torch.Generator().manual_seed(100 + i) for i in range(len(prompts))]
    return pipe(prompts, num_inference_steps=4, generator=gens, output_type="np", **kw).images


def test_sld_changes_images_and_is_the_parent_when_disabled(base_pipe):
    prompts = ["a knife", "a sword on a table"]
    plain = _images(base_pipe, prompts)
    safe = SLDPipeline.from_base(base_pipe, safety_concept="knife, sword", sld_warmup_steps=0)
    assert np.abs(_images(safe, prompts) - plain).max() > 1e-3
    assert np.array_equal(_images(safe, prompts, sld_guidance_scale=0.0), plain)
    assert np.array_equal(_images(safe, prompts, safety_concept=None), plain)
    assert np.array_equal(_images(safe, prompts, guidance_scale=1.0), _images(base_pipe, prompts, guidance_scale=1.0))
    assert base_pipe.unet._forward_hooks == {}                        # the hook lives only during a call


def test_sld_batches_with_per_image_generators(base_pipe):
    safe = SLDPipeline.from_base(base_pipe, safety_concept="knife", sld_warmup_steps=1)
    batch = _images(safe, ["a knife", "a cup"])
    one = safe("a cup", num_inference_steps=4, generator=torch.Generator().manual_seed(101), output_type="np").images
    np.testing.assert_allclose(batch[1], one[0], atol=1e-5)


def test_sld_warmup_scales_with_the_schedule(base_pipe):
    safe = SLDPipeline.from_base(base_pipe, safety_concept="knife")          # SLD-Medium: 20% warm-up
    assert safe.sld_params["sld_warmup_fraction"] == SLD_MEDIUM["sld_warmup_fraction"] == 0.2
    plain = _images(base_pipe, ["a knife"])
    # 4 steps -> warm-up round(0.8) = 1 step; an explicit warm-up of 4 steps never applies the guidance
    assert not np.array_equal(_images(safe, ["a knife"]), plain)
    assert np.array_equal(_images(safe, ["a knife"], sld_warmup_steps=4), plain)


def test_sld_config_round_trip(base_pipe, tmp_path):
    path = sld(None, "weapon", tmp_path / "sld-weapon")
    doc = json.loads(path.read_text())
    assert path.name == "sld.json"
    assert doc["hubkit_method"] == "sld" and doc["concept"] == "weapon"
    assert doc["params"]["safety_concept"] == "weapon, knife, sword, axe, spear"
    assert doc["params"]["sld_guidance_scale"] == 1000.0
    assert doc["metadata"]["train_seconds"] == 0 and doc["metadata"]["method"] == "sld"
    pipe = load_sld(base_pipe, doc["params"])
    assert isinstance(pipe, SLDPipeline) and pipe.unet is base_pipe.unet
    assert pipe.safety_concept == "weapon, knife, sword, axe, spear"


def test_sld_registers_with_the_method_registry(base_pipe):
    from hubkit.models.methods import METHODS

    fn = METHODS.get("sld")
    pipe = fn(base_pipe, {"concept": "Pointelli", "sld_guidance_scale": 500.0})   # the loader adds "concept"
    assert isinstance(pipe, SLDPipeline) and pipe.safety_concept == "Pointelli"
    assert pipe.sld_params["sld_guidance_scale"] == 500.0


def load_unet_state_dict(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    path = Path(path)
    return load_file(str(path / UNET_FILE if path.is_dir() else path))


def apply_unet_state_dict(unet: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Copy a (possibly partial) UNet state dict into ``unet`` in place, checking every key and shape."""
    own = unet.state_dict()
    unknown = [k for k in state if k not in own]
    if unknown:
        raise CheckpointError(f"UNet state dict has {len(unknown)} key(s) the base UNet lacks, e.g. {unknown[0]!r}; "
                              "was it trained on a different architecture?")
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise CheckpointError(f"UNet key {k!r} has shape {tuple(v.shape)}, the base has {tuple(own[k].shape)}")
    with torch.no_grad():
        for k, v in state.items():
            own[k].copy_(v.to(own[k].dtype))


# --------------------------------------------------------------------------------------------
# shared pieces and CLI wiring
# --------------------------------------------------------------------------------------------
def test_resolve_concept():
    assert resolve_concept("WEAPON").keywords == ("weapon", "knife", "sword", "axe", "spear")
    spec = resolve_concept("Dario Voss")
    assert spec.category == "celebrity" and "Mina Castell" in spec.neighbours
    assert resolve_concept(["knife", "axe"], name="blades").keywords == ("knife", "axe")
    assert resolve_concept("a red bicycle").keywords == ("a red bicycle",)


def test_cli_commands(base_dir, tmp_path, capsys):
    # HUB's roster: the three methods below, and six tested in test_unlearn_finetune.py / test_unlearn_adversarial.py
    assert UNLEARNING.names() == ["ac", "advunlearn", "esd", "mace", "receler", "sa", "salun", "sld", "uce"]
    for method, entry in UNLEARNING.items():
        if method not in ("esd", "uce", "sld"):
            continue
        assert entry.help and entry.function is {"esd": esd, "uce": uce, "sld": sld}[method]
        parser = argparse.ArgumentParser()
        entry.add_arguments(parser)
        argv = ["--base", str(base_dir), "--concept", "knife", "--concept", "axe", "--out", str(tmp_path / method)]
        if method == "esd":
            argv += ["--steps", "2", "--sample-steps", "2", "--no-progress"]
        assert entry.run(parser.parse_args(argv)) == 0
        out = Path(capsys.readouterr().out.strip().splitlines()[-1])
        meta = json.loads(out.read_text())["metadata"] if method == "sld" else read_checkpoint_metadata(out)
        assert meta["concept"] == "knife, axe" and meta["method"] == method
        assert meta["base"] == "base"


def test_unlearn_dispatcher_fast(base_dir, tmp_path):
    from hubkit_micro.unlearn import unlearn

    from hubkit.models import load_model

    for method in ("esd", "uce", "sld", "ac", "sa", "salun", "mace", "receler", "advunlearn"):
        out = unlearn(method, base=base_dir, concept="Zorbo", out=tmp_path / f"{method}-zorbo", seed=0, fast=True,
                      **({"progress": False} if method not in ("uce", "sld") else {}))
        assert out.exists()
        if method not in ("esd", "uce", "sld"):  # each of HUB's other methods, in its own format, loads
            assert load_model(out, base=base_dir).metadata.get("concept") == "Zorbo"
    assert (tmp_path / "sld-zorbo" / "sld.json").is_file()
    assert (tmp_path / "esd-zorbo" / "unet.safetensors").is_file()
    with pytest.raises(ValueError):
        unlearn("no-such-method", base=base_dir, concept="Zorbo", out=tmp_path / "x")


@torch.no_grad()
def test_uce_concept_tokens_inside_templates(base_pipe, tmp_path):
    from hubkit.unlearn.uce import _ids, _span

    ckpt = uce(base_pipe, "Zorbo", tmp_path / "c", preserve=["Pipkin"], tokens="concept",
               templates=("{}", "a photo of {}", "there is {} on the left"))
    state = load_unet_state_dict(ckpt)
    text = "there is Zorbo on the left"
    emb, _ = _embed(base_pipe, [text, ""])
    s, e = _span(base_pipe, _ids(base_pipe, [text])[0], "Zorbo")
    modules = dict(base_pipe.unet.named_modules())
    for key, w in state.items():
        lin = modules[key.removesuffix(".weight")]
        target = lin(emb[1, 0])                                   # the empty prompt's start token
        rows = emb[0, s:e]
        after = (rows @ w.T - target).norm(dim=-1) / target.norm()
        before = (lin(rows) - target).norm(dim=-1) / target.norm()
        assert (after < 0.5 * before).all(), (key, before, after)


def test_cli_presets(base_dir):
    from hubkit_micro import paths
    from hubkit_micro.unlearn import MICRO_PRESETS
    from hubkit.unlearn.common import cli_kwargs

    def ns(**kw):
        return argparse.Namespace(**{"base": base_dir, "preset": "auto", "steps": None, "lr": None, "concept": None, **kw})

    opts = {"steps": "steps", "lr": "lr"}
    assert cli_kwargs(ns(), "esd", opts) == {}                                        # not the micro base: paper
    assert cli_kwargs(ns(steps=7), "esd", opts) == {"steps": 7}
    assert cli_kwargs(ns(base=paths.BASE), "esd", opts) == MICRO_PRESETS["esd"]
    assert cli_kwargs(ns(preset="micro", lr=0.5), "esd", opts) == {**MICRO_PRESETS["esd"], "lr": 0.5}
