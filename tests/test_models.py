"""load_model: every checkpoint format onto the base model, metadata, scheduler, fingerprint, registry."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from hubkit.models import (
    METHODS,
    LoadedModel,
    format_names,
    load_model,
    load_model_cached,
    read_metadata,
    register_format,
    unregister_format,
)
from hubkit.models import registry
from hubkit.models.fingerprint import fingerprint
from hubkit.models.io import decode_metadata
from hubkit.models.ldm import LDM_UNET_PREFIX, diffusers_unet_to_ldm
from tiny_formats import (
    generate,
    lora_reference_unet,
    make_lora,
    perturb,
    saved_base,
    state,
    tiny_pipeline,
    tiny_sd_layout_pipeline,
    write_json,
    write_single_file,
)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HUBKIT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return saved_base(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def sd_base(tmp_path_factory) -> Path:
    """A base with SD-1.x's exact block layout (for LDM single files)."""
    return saved_base(tmp_path_factory.getbasetemp(), "sd")


@pytest.fixture(scope="module")
def base_state():
    p = tiny_pipeline(0)
    return {name: state(getattr(p, name)) for name in ("unet", "text_encoder", "vae")}


@pytest.fixture(scope="module")
def edited():
    """The base with perturbed UNet and text encoder (the 'unlearned' weights)."""
    p = tiny_pipeline(0)
    perturb(p.unet, seed=1)
    perturb(p.text_encoder, seed=2)
    return p


def same(module, expected: dict) -> bool:
    """Bit-identical weights: loading only copies them (any change would be a loader bug)."""
    got = module.state_dict()
    return set(got) == set(expected) and all(torch.equal(got[k], expected[k]) for k in expected)


def close(module, expected: dict) -> bool:
    """Equal up to float rounding: for weights computed by a matmul (a fused LoRA), whose last bits depend on
    the BLAS build and the machine."""
    got = module.state_dict()
    return set(got) == set(expected) and all(torch.allclose(got[k], expected[k], rtol=1e-5, atol=1e-6)
                                             for k in expected)


def old(path: Path) -> Path:
    """Make every file under ``path`` look 1 h old (so the fingerprint cache may store it)."""
    t = time.time() - 3600
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        os.utime(p, (t, t))
    return path


# ---------------------------------------------------------------------------------------------- (a) diffusers
def test_diffusers_folder_loads_without_a_base(base, base_state):
    (base / "hubkit.json").write_text(json.dumps({"method": "none", "concept": "-"}))
    try:
        m = load_model(base, base=None)
        size = sum(p.stat().st_size for p in base.rglob("*") if p.is_file())
    finally:
        (base / "hubkit.json").unlink()
    assert isinstance(m, LoadedModel) and m.format == "diffusers-folder" and m.source == base
    assert all(same(getattr(m.pipe, n), base_state[n]) for n in base_state)
    assert m.pipe.safety_checker is None
    assert m.metadata == {"method": "none", "concept": "-"}
    assert m.storage_bytes == size > 0
    assert m.details["scheduler"]["source"] == "model" and m.scheduler["class"] == "DDIMScheduler"
    assert len(m.fingerprint) == 64
    assert generate(m.pipe).shape == (32, 32, 3)


def test_scheduler_comes_from_the_base_unless_given(base, tmp_path):
    from diffusers import PNDMScheduler

    p = tiny_pipeline(0)
    p.scheduler = PNDMScheduler.from_config(p.scheduler.config)
    p.save_pretrained(tmp_path / "mace")
    own = load_model(tmp_path / "mace", base=None)
    onto = load_model(tmp_path / "mace", base=base)
    given = load_model(tmp_path / "mace", base=base, scheduler="EulerDiscreteScheduler")
    assert (own.scheduler["class"], own.scheduler["source"]) == ("PNDMScheduler", "model")
    assert (onto.scheduler["class"], onto.scheduler["source"]) == ("DDIMScheduler", "base")
    assert type(onto.pipe.scheduler).__name__ == "DDIMScheduler"
    assert (given.scheduler["class"], given.scheduler["source"]) == ("EulerDiscreteScheduler", "caller")
    assert len({own.fingerprint, onto.fingerprint, given.fingerprint}) == 3  # same weights, other samplers


# ---------------------------------------------------------------------------------------------- (b) single file
def test_single_file_ldm_checkpoint_in_sd_layout(sd_base, tmp_path):
    base = sd_base
    p = tiny_sd_layout_pipeline(0)
    perturb(p.unet, seed=5)
    perturb(p.vae, seed=6)
    want = {n: state(getattr(p, n)) for n in ("unet", "vae", "text_encoder")}
    p.save_pretrained(tmp_path / "as-folder")
    st = load_model(write_single_file(p, tmp_path / "model.safetensors"), base=base)
    ck = load_model(write_single_file(p, tmp_path / "model.ckpt"), base=base)
    folder = load_model(tmp_path / "as-folder", base=base)
    assert st.format == ck.format == "single-file"
    assert all(same(getattr(st.pipe, n), want[n]) for n in want)
    # the same weights through three formats are one model
    assert st.fingerprint == ck.fingerprint == folder.fingerprint
    assert generate(st.pipe, size=64).shape == (64, 64, 3)


# ---------------------------------------------------------------------------------------------- (c) unet
def _unet_variants(tmp_path: Path, unet_sd: dict) -> dict[str, Path]:
    out = {}
    torch.save(unet_sd, out.setdefault("esd.pt", tmp_path / "esd.pt"))
    torch.save({"state_dict": unet_sd, "epoch": 3}, out.setdefault("wrapped.bin", tmp_path / "wrapped.bin"))
    torch.save({"unet_state_dict": unet_sd}, out.setdefault("hub-wrapped.pt", tmp_path / "hub-wrapped.pt"))
    torch.save({"module." + k: v for k, v in unet_sd.items()}, out.setdefault("module.pth", tmp_path / "module.pth"))
    save_file(unet_sd, str(out.setdefault("unet.safetensors", tmp_path / "x.safetensors")),
              metadata={"method": "esd", "concept": "Van Gogh", "train_seconds": "12.5"})
    ldm = {LDM_UNET_PREFIX + k: v for k, v in diffusers_unet_to_ldm(unet_sd, 1).items()}
    torch.save({"state_dict": ldm}, out.setdefault("ldm-unet.ckpt", tmp_path / "ldm-unet.ckpt"))
    return out


def test_unet_state_dicts_in_every_wrapping(base, base_state, edited, tmp_path):
    unet_sd = state(edited.unet)
    for name, path in _unet_variants(tmp_path, unet_sd).items():
        m = load_model(path, base=base)
        assert m.format == "unet-state-dict", name
        assert same(m.pipe.unet, unet_sd), name
        assert same(m.pipe.text_encoder, base_state["text_encoder"]) and same(m.pipe.vae, base_state["vae"]), name
        assert m.storage_bytes == path.stat().st_size
        if name == "unet.safetensors":
            assert m.metadata == {"method": "esd", "concept": "Van Gogh", "train_seconds": 12.5}
    assert generate(m.pipe).shape == (32, 32, 3)


def test_partial_unet_folder_and_diffusers_unet_folder(base, base_state, edited, tmp_path):
    unet_sd = state(edited.unet)
    attn2 = {k: v for k, v in unet_sd.items() if ".attn2." in k}
    folder = tmp_path / "esd-out"
    folder.mkdir()
    save_file(attn2, str(folder / "unet.safetensors"), metadata={"keys": "changed"})
    write_json(folder / "hubkit.json", {"method": "esd", "concept": "cat", "keys": "changed",
                                        "train_seconds": 3.5, "train_peak_mem_mb": 100})
    m = load_model(folder, base=base)
    assert m.format == "unet-state-dict" and m.details["unet"]["missing"] == len(unet_sd) - len(attn2)
    expected = dict(base_state["unet"], **attn2)
    assert same(m.pipe.unet, expected)
    assert m.metadata["train_peak_mem_mb"] == 100 and m.metadata["concept"] == "cat"

    edited.unet.save_pretrained(tmp_path / "unet")
    d = load_model(tmp_path / "unet", base=base)
    assert d.format == "unet-state-dict" and same(d.pipe.unet, unet_sd)


def test_ac_style_dict_with_unet_and_text_encoder(base, base_state, edited, tmp_path):
    unet_part = {k: v for k, v in state(edited.unet).items() if ".attn2.to_k." in k or ".attn2.to_v." in k}
    text = {"text_model." + k: v for k, v in state(edited.text_encoder).items()}
    torch.save({"unet": unet_part, "text_encoder": text}, tmp_path / "cat.bin")
    write_json(tmp_path / "cat.hubkit.json", {"method": "ac", "keys": "changed"})
    m = load_model(tmp_path / "cat.bin", base=base)
    assert m.format == "unet-state-dict" and m.details["components"] == ["unet", "text_encoder"]
    assert same(m.pipe.unet, dict(base_state["unet"], **unet_part))
    assert same(m.pipe.text_encoder, state(edited.text_encoder))
    assert m.metadata["method"] == "ac"


# ---------------------------------------------------------------------------------------------- (d) text encoder
def test_text_encoder_folder_and_state_dicts(base, base_state, edited, tmp_path):
    te = state(edited.text_encoder)
    assert not any(k.startswith("text_model.") for k in te)  # transformers 5 convention
    edited.text_encoder.save_pretrained(tmp_path / "advunlearn")
    save_file(te, str(tmp_path / "te.safetensors"))                              # without the prefix
    torch.save({"text_model." + k: v for k, v in te.items()}, tmp_path / "te.pt")  # with it (transformers 4 / hub)
    for path in (tmp_path / "advunlearn", tmp_path / "te.safetensors", tmp_path / "te.pt"):
        m = load_model(path, base=base)
        assert m.format == "text-encoder", path
        assert same(m.pipe.text_encoder, te), path
        assert same(m.pipe.unet, base_state["unet"]) and same(m.pipe.vae, base_state["vae"]), path
    assert generate(m.pipe).shape == (32, 32, 3)


# ---------------------------------------------------------------------------------------------- (e) lora
@pytest.fixture(scope="module")
def lora(tmp_path_factory):
    from diffusers import StableDiffusionPipeline

    root = tmp_path_factory.mktemp("lora")
    p = tiny_pipeline(0)
    sd = make_lora(p.unet)
    StableDiffusionPipeline.save_lora_weights(str(root / "lora"), unet_lora_layers=sd, safe_serialization=True)
    return root / "lora", lora_reference_unet(p.unet)


def test_lora_fused_and_unfused(base, base_state, lora, tmp_path):
    folder, merged = lora
    fused = load_model(folder, base=base)
    assert fused.format == "lora" and fused.details["lora_fused"] is True
    assert close(fused.pipe.unet, merged)
    assert same(fused.pipe.text_encoder, base_state["text_encoder"])
    unfused = load_model(folder / "pytorch_lora_weights.safetensors", base=base, lora_fuse=False)
    assert unfused.format == "lora" and unfused.details["lora_fused"] is False
    assert any("lora_A" in k for k in unfused.pipe.unet.state_dict())
    a, b = generate(fused.pipe), generate(unfused.pipe)
    assert np.abs(a - b).max() < 1e-3
    assert fused.fingerprint != unfused.fingerprint


# ---------------------------------------------------------------------------------------------- (f) method config
@pytest.fixture(scope="module")
def dummy_method():
    from diffusers import StableDiffusionPipeline

    class ScaledGuidancePipeline(StableDiffusionPipeline):
        pass

    @METHODS.register("hubkit_test_scaled")
    def scaled(pipe, params):
        out = ScaledGuidancePipeline(**pipe.components)
        out.test_params = dict(params)
        return out

    return "hubkit_test_scaled"


def test_method_config_applies_a_registered_method(base, base_state, dummy_method, edited, tmp_path):
    cfg = write_json(tmp_path / "m.json", {"hubkit_method": dummy_method, "params": {"strength": 2},
                                            "concept": "cat", "metadata": {"train_seconds": 0}})
    m = load_model(cfg, base=base)
    assert m.format == "method-config" and type(m.pipe).__name__ == "ScaledGuidancePipeline"
    assert m.pipe.test_params == {"strength": 2, "concept": "cat"}
    assert m.metadata == {"train_seconds": 0, "method": dummy_method, "concept": "cat"}
    assert same(m.pipe.unet, base_state["unet"])
    other = load_model(write_json(tmp_path / "m2.json", {"hubkit_method": dummy_method, "params": {"strength": 3},
                                                          "concept": "cat"}), base=base)
    assert other.fingerprint != m.fingerprint  # the method config is part of the fingerprint
    # a method on top of another checkpoint
    torch.save(state(edited.unet), tmp_path / "esd.pt")
    wrapped = load_model(write_json(tmp_path / "w.json", {"hubkit_method": dummy_method, "model": "esd.pt"}),
                         base=base)
    assert same(wrapped.pipe.unet, state(edited.unet)) and wrapped.details["wrapped"]["format"] == "unet-state-dict"
    assert wrapped.storage_bytes == (tmp_path / "w.json").stat().st_size + (tmp_path / "esd.pt").stat().st_size
    assert generate(wrapped.pipe).shape == (32, 32, 3)


@pytest.mark.skipif(importlib.util.find_spec("hubkit.models.sld") is None, reason="hubkit/models/sld.py not written yet")
def test_method_config_sld(base, tmp_path):
    from hubkit.models.sld import write_sld_config

    m = load_model(write_json(tmp_path / "sld.json", {"hubkit_method": "sld", "concept": "cat", "params": {}}),
                   base=base)
    assert m.format == "method-config" and m.metadata["method"] == "sld"
    assert generate(m.pipe).shape == (32, 32, 3)
    folder = tmp_path / "sld-out"
    write_sld_config(folder, "cat")  # a folder holding sld.json is accepted like the file itself
    f = load_model(folder, base=base)
    assert f.format == "method-config" and f.metadata["concept"] == "cat"
    assert f.fingerprint != load_model(base, base=None).fingerprint


# ---------------------------------------------------------------------------------------------- fingerprint
def test_fingerprint_is_stable_and_sensitive(base, edited, tmp_path):
    unet_sd = state(edited.unet)
    path = old(_write(tmp_path / "a.safetensors", unet_sd))
    first, again = load_model(path, base=base), load_model(path, base=base)
    assert first.fingerprint == again.fingerprint
    assert again.details["fingerprint_cached"] is True
    # a fresh process (no memory cache) with the same files computes the same hash
    assert fingerprint(first.pipe) == fingerprint(again.pipe)
    # one weight, changed by a tiny amount, changes the fingerprint (the file is rewritten: new stat)
    k = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight"
    unet_sd[k] = unet_sd[k].clone()
    unet_sd[k][0, 0] += 1e-4
    _write(path, unet_sd)
    changed = load_model(path, base=base)
    assert changed.fingerprint != first.fingerprint and changed.details["fingerprint_cached"] is False
    # touching a file without changing it recomputes and finds the same hash
    os.utime(path, None)
    t1 = load_model(_write(tmp_path / "b.safetensors", state(edited.unet)), base=base)
    assert t1.fingerprint == first.fingerprint
    # dtype is part of what the model computes with
    half = load_model(tmp_path / "b.safetensors", base=base, dtype=torch.float16)
    assert half.fingerprint != t1.fingerprint and half.pipe.unet.dtype == torch.float16


def _write(path: Path, sd: dict) -> Path:
    save_file(sd, str(path))
    return path


def test_load_model_cached_loads_once(base, edited, tmp_path):
    path = _write(tmp_path / "u.safetensors", state(edited.unet))
    a = load_model_cached(path, base=base)
    assert load_model_cached(path, base=base) is a
    assert load_model_cached(path, base=base, scheduler="EulerDiscreteScheduler") is not a
    time.sleep(0.01)
    _write(path, state(edited.unet))  # rewritten: new stat
    assert load_model_cached(path, base=base) is not a


def test_read_metadata_is_cheap_and_merges_sidecars(tmp_path):
    save_file({"x": torch.zeros(1)}, str(tmp_path / "m.safetensors"),
              metadata={"method": "uce", "steps": "3", "concept": "1984", "keywords": '["a", "b"]'})
    assert read_metadata(tmp_path / "m.safetensors") == {"method": "uce", "steps": 3, "concept": "1984",
                                                         "keywords": ["a", "b"]}
    write_json(tmp_path / "m.hubkit.json", {"concept": "dog"})
    assert read_metadata(tmp_path / "m.safetensors")["concept"] == "dog"  # the sidecar wins


def test_metadata_names_stay_strings_and_other_values_decode():
    """One parser for every ``__metadata__`` reader: a concept called "1984" is not an int."""
    raw = {"concept": "1984", "concepts": '["1984", "Van Gogh"]', "method": "true", "name": "null",
           "safety_concept": '"quoted"', "steps": "3", "train_seconds": "12.5", "partial": "true",
           "keywords": '["a", "b"]', "format": "pt", "note": "not json {"}
    assert decode_metadata(raw) == {
        "concept": "1984", "concepts": ["1984", "Van Gogh"], "method": "true", "name": "null",
        "safety_concept": "quoted", "steps": 3, "train_seconds": 12.5, "partial": True,
        "keywords": ["a", "b"], "format": "pt", "note": "not json {"}


# ---------------------------------------------------------------------------------------------- registry
def test_formats_are_tried_in_the_documented_order_and_plugins_after():
    names = format_names()
    assert names[:6] == ["diffusers-folder", "method-config", "lora", "single-file", "unet-state-dict",
                         "text-encoder"]


def test_a_registered_format_is_detected_and_loaded(base, base_state, tmp_path):
    @register_format("hubkit-test-npz", before="unet-state-dict")
    class Npz:
        def detect(self, path):
            return path.suffix == ".mytest"

        def load(self, path, base_pipe, ctx):
            assert ctx.base_path == base and ctx.metadata == {}
            base_pipe.unet.conv_in.bias.data.fill_(float(path.read_text()))
            return base_pipe

    try:
        names = format_names()
        assert names.index("hubkit-test-npz") == names.index("unet-state-dict") - 1
        (tmp_path / "m.mytest").write_text("0.5")
        m = load_model(tmp_path / "m.mytest", base=base)
        assert m.format == "hubkit-test-npz" and torch.all(m.pipe.unet.conv_in.bias == 0.5)
        assert same(m.pipe.vae, base_state["vae"])
    finally:
        unregister_format("hubkit-test-npz")
    assert "hubkit-test-npz" not in format_names()


def test_entry_point_formats_are_loaded(monkeypatch):
    class Plugin:
        def detect(self, path):
            return False

        def load(self, path, base_pipe, ctx):
            raise AssertionError

    class EP:
        name, value = "hubkit-test-ep", "somepkg:Plugin"

        def load(self):
            return Plugin

    class Broken(EP):
        name, value = "hubkit-test-broken", "missing:Thing"

        def load(self):
            raise ImportError("no module named missing")

    import hubkit.registry as core

    monkeypatch.setattr(core.metadata, "entry_points",
                        lambda group: [EP(), Broken()] if group == "hubkit.formats" else [])
    monkeypatch.setattr(registry.FORMATS, "_entry_points_loaded", False)
    monkeypatch.setattr(registry.FORMATS, "_broken", {})  # restored afterwards: other tests see no broken plugin
    try:
        names = format_names()
        assert names[-1] == "hubkit-test-ep"
        # a broken plugin costs only its own name; it is listed when no format matches
        assert [e for e in registry.plugin_errors() if "hubkit-test-broken" in e and "no module named missing" in e]
    finally:
        unregister_format("hubkit-test-ep")
