"""HUB's method checkpoint formats load through ``--model`` (``load_model``), each from a small fabricated file with
the key layout of that method's published checkpoints, on SD-1.x's exact block structure (tiny width).

Layouts (see hubkit/models/formats/__init__.py): ESD/UCE/SA/SalUn a UNet ``state_dict`` ``.pt``; AC
``{"unet": {attn2.to_k/to_v weights}}`` (concept-ablation ``save_pretrained(parameter_group="cross-attn")``);
Receler ``{prefix: AdapterEraser state}``; MACE a fused pipeline folder or its per-concept attn-procs LoRA;
SLD a method config; AdvUnlearn a CLIPTextModel folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hubkit.errors import CheckpointError
from hubkit.models import load_model

from tiny_formats import load_folder, perturb, saved_base, state, write_json


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HUBKIT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return saved_base(tmp_path_factory.getbasetemp(), "sd")


@pytest.fixture(scope="module")
def base_pipe(base):
    return load_folder(base)


@pytest.fixture(scope="module")
def base_unet(base_pipe):
    return state(base_pipe.unet)


def _same(module, expected: dict) -> bool:
    got = module.state_dict()
    return set(got) == set(expected) and all(torch.equal(got[k], expected[k]) for k in expected)


def _edited_unet(base, only: str | None = None, seed: int = 1) -> dict:
    p = load_folder(base)
    perturb(p.unet, seed=seed, only=only)
    return state(p.unet)


# ---------------------------------------------------------------------------------------------- UNet .pt
@pytest.mark.parametrize("method,only", [("esd", ".attn2."), ("uce", ".attn2.to_"), ("sa", None), ("salun", None)])
def test_unet_state_dict_methods(base, base_unet, tmp_path, method, only):
    """HUB's ``models/{esd,uce,sa,salun}/{target}.pt``: ``torch.save(unet.state_dict())`` (every key, even where
    only the cross-attention changed: ESD-x, UCE)."""
    sd = _edited_unet(base, only)
    (tmp_path / method).mkdir()
    path = tmp_path / method / "Cat.pt"
    torch.save(sd, path)
    write_json(tmp_path / method / "hubkit.json", {"method": method})
    m = load_model(path, base=base)
    assert m.format == "unet-state-dict" and _same(m.pipe.unet, sd)
    assert not _same(m.pipe.unet, base_unet)
    assert m.details["hub_scheduler"] == "LMSDiscreteScheduler"
    assert m.details["scheduler"]["source"] == "base"  # HUB's sampler is recorded, not imposed


# ---------------------------------------------------------------------------------------------- AC
def test_ac_cross_attn_delta_loads_without_a_declaration(base, base_unet, tmp_path):
    edited = _edited_unet(base, ".attn2.to_")
    delta = {"unet": {k: v for k, v in edited.items() if ".attn2.to_k." in k or ".attn2.to_v." in k}}
    assert len(delta["unet"]) == 32  # 16 cross-attention blocks in SD-1.x, k and v (no bias)
    torch.save(delta, tmp_path / "Cat.bin")
    m = load_model(tmp_path / "Cat.bin", base=base)
    assert m.format == "unet-state-dict" and m.details["method_hint"] == "ac"
    assert m.details["hub_scheduler"] == "PNDMScheduler" and m.details["partial"] is True
    assert _same(m.pipe.unet, dict(base_unet, **delta["unet"]))


def test_ac_full_weight_and_other_partial_files(base, base_unet, tmp_path):
    edited = _edited_unet(base, seed=3)
    # parameter_group="full-weight": every UNet parameter under "unet"
    torch.save({"unet": edited}, tmp_path / "full.bin")
    m = load_model(tmp_path / "full.bin", base=base)
    assert _same(m.pipe.unet, edited) and "method_hint" not in m.details
    # anything else partial still needs "keys": "changed"
    only_k = {k: v for k, v in edited.items() if ".attn2.to_k." in k}
    torch.save({"unet": only_k}, tmp_path / "k.bin")
    with pytest.raises(CheckpointError, match='missing key.*"keys": "changed"'):
        load_model(tmp_path / "k.bin", base=base)
    torch.save({k: v for k, v in edited.items() if ".attn2.to_" in k and ".to_out" not in k and ".to_q" not in k},
               tmp_path / "flat.pt")  # AC's keys, but not AC's {"unet": ...} layout
    with pytest.raises(CheckpointError, match="missing key"):
        load_model(tmp_path / "flat.pt", base=base)


# ---------------------------------------------------------------------------------------------- Receler
def _receler_ckpt(pipe, rank: int = 128, up_scale: float = 0.0, seed: int = 0) -> dict:
    """``{prefix: AdapterEraser.state_dict()}`` as Receler saves it (up projection zero-initialised)."""
    from diffusers.models.attention import BasicTransformerBlock

    from hubkit.models.formats.receler import prefix_name

    g = torch.Generator().manual_seed(seed)
    ckpt = {}
    for name, m in pipe.unet.named_modules():
        if isinstance(m, BasicTransformerBlock):
            dim = m.attn2.to_out[0].weight.shape[1]
            ckpt[prefix_name(name)] = {
                "down.weight": torch.randn(rank, dim, generator=g) * 0.1, "down.bias": torch.randn(rank, generator=g),
                "up.weight": torch.randn(dim, rank, generator=g) * up_scale, "up.bias": torch.zeros(dim)}
    return ckpt


def _unet_out(pipe) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 8, 8, generator=g)
    ctx = torch.randn(1, 7, pipe.unet.config.cross_attention_dim, generator=g)
    with torch.no_grad():
        return pipe.unet(x, torch.tensor([500]), encoder_hidden_states=ctx).sample


def test_receler_adapters_wrap_the_cross_attention(base, base_pipe, tmp_path):
    zero = _receler_ckpt(base_pipe)
    assert sorted(zero)[:2] == ["down_blocks.0.attentions.0", "down_blocks.0.attentions.1"]
    assert "mid_block.attentions.0" in zero and len(zero) == 16
    torch.save(zero, tmp_path / "zero.pt")
    torch.save(_receler_ckpt(base_pipe, up_scale=0.5), tmp_path / "Cat.pt")
    ref = _unet_out(base_pipe)
    fp_base = load_model(base, base=None).fingerprint

    m0 = load_model(tmp_path / "zero.pt", base=base)
    assert m0.format == "receler" and m0.details["adapters"] == 16 and m0.details["rank"] == 128
    assert m0.details["hub_scheduler"] == "LMSDiscreteScheduler" and m0.details["method_hint"] == "receler"
    assert torch.allclose(_unet_out(m0.pipe), ref, atol=1e-6)  # zero-initialised up: the base's output

    m1 = load_model(tmp_path / "Cat.pt", base=base)
    assert not torch.allclose(_unet_out(m1.pipe), ref, atol=1e-4)
    sd = m1.pipe.unet.state_dict()
    assert "down_blocks.0.attentions.0.transformer_blocks.0.attn2.adapter.up.weight" in sd
    assert len({fp_base, m0.fingerprint, m1.fingerprint}) == 3


def test_receler_mismatch_names_the_key(base, base_pipe, tmp_path):
    bad = _receler_ckpt(base_pipe, rank=4)
    bad["up_blocks.1.attentions.2"]["up.weight"] = torch.zeros(7, 4)
    torch.save(bad, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match=r"up_blocks\.1\.attentions\.2\.up\.weight has shape \(7, 4\)"):
        load_model(tmp_path / "shape.pt", base=base)
    extra = _receler_ckpt(base_pipe, rank=4)
    extra["down_blocks.3.attentions.0"] = extra["mid_block.attentions.0"]
    torch.save(extra, tmp_path / "extra.pt")
    with pytest.raises(CheckpointError, match=r"down_blocks\.3\.attentions\.0\.down\.weight matches no"):
        load_model(tmp_path / "extra.pt", base=base)
    missing = _receler_ckpt(base_pipe, rank=4)
    del missing["mid_block.attentions.0"]
    torch.save(missing, tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match=r"no Receler adapter for 'mid_block\.attentions\.0'"):
        load_model(tmp_path / "missing.pt", base=base)


# ---------------------------------------------------------------------------------------------- MACE
def test_mace_fused_pipeline_folder(base, tmp_path):
    p = load_folder(base)
    perturb(p.unet, seed=5, only=".attn2.to_")
    p.save_pretrained(str(tmp_path / "Cat"), safe_serialization=True)
    write_json(tmp_path / "Cat" / "hubkit.json", {"method": "mace"})
    m = load_model(tmp_path / "Cat", base=base)
    assert m.format == "diffusers-folder" and _same(m.pipe.unet, state(p.unet))


def test_mace_attn_procs_lora(base, base_pipe, base_unet, tmp_path):
    """MACE's ``unet.save_attn_procs(output_dir/lora/<concept>)`` (diffusers 0.22, its LoRAAttnProcessor on
    attn1/attn2; only attn2's to_k/to_v LoRAs are trained, the others keep up = 0)."""
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(0)
    sd, expected = {}, dict(base_unet)
    for name, m in base_pipe.unet.named_modules():
        if not name.endswith((".attn1", ".attn2")):
            continue
        for proj in ("to_q", "to_k", "to_v", "to_out"):
            lin = m.to_out[0] if proj == "to_out" else getattr(m, proj)
            down = torch.randn(4, lin.in_features, generator=g) * 0.1
            trained = name.endswith(".attn2") and proj in ("to_k", "to_v")
            up = torch.randn(lin.out_features, 4, generator=g) * 0.1 if trained else torch.zeros(lin.out_features, 4)
            sd[f"{name}.processor.{proj}_lora.down.weight"] = down
            sd[f"{name}.processor.{proj}_lora.up.weight"] = up
            if trained:
                key = f"{name}.{proj}.weight"
                expected[key] = expected[key] + up @ down
    folder = tmp_path / "lora" / "cat"
    folder.mkdir(parents=True)
    save_file(sd, str(folder / "pytorch_lora_weights.safetensors"), metadata={"format": "pt"})
    m = load_model(folder, base=base)
    assert m.format == "attn-procs-lora" and m.details["lora_fused"] is True and m.details["lora_tensors"] == len(sd)
    got = m.pipe.unet.state_dict()
    assert set(got) == set(expected)
    assert all(torch.allclose(got[k], expected[k], rtol=1e-5, atol=1e-6) for k in expected)


# ---------------------------------------------------------------------------------------------- SLD, AdvUnlearn
def test_sld_method_config(base, tmp_path):
    path = write_json(tmp_path / "sld.json", {"hubkit_method": "sld", "concept": "Cat", "params": {}})
    m = load_model(path, base=base)
    assert m.format == "method-config" and m.metadata["method"] == "sld"


def test_advunlearn_text_encoder_folder(base, tmp_path):
    """AdvUnlearn publishes a CLIPTextModel ``save_pretrained`` folder (config.json + model.safetensors)."""
    p = load_folder(base)
    perturb(p.text_encoder, seed=7)
    p.text_encoder.save_pretrained(str(tmp_path / "nudity_unlearned"))
    m = load_model(tmp_path / "nudity_unlearned", base=base)
    assert m.format == "text-encoder" and _same(m.pipe.text_encoder, state(p.text_encoder))


# ---------------------------------------------------------------------------------------------- unknown
def test_unknown_layout_is_one_line_naming_the_file_and_the_formats(base, tmp_path):
    torch.save({"foo": {"bar": torch.randn(3)}, "baz": torch.randn(2)}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError) as err:
        load_model(tmp_path / "odd.pt", base=base)
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path / "odd.pt") in msg and "unknown checkpoint format" in msg
    for name in ("lora", "unet-state-dict", "text-encoder", "attn-procs-lora", "receler"):
        assert f"{name} (" in msg
    json.dumps(msg)
