"""load_model on bad input: every failure is a one-line CheckpointError naming the option, the key and the fix."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from hubkit.errors import CheckpointError, ConfigError
from hubkit.models import format_names, load_model
from hubkit.models.ldm import diffusers_to_ldm_state_dict
from tiny_formats import perturb, saved_base, state, tiny_pipeline, tiny_sd_layout_pipeline, write_json


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
def unet_sd():
    p = tiny_pipeline(0)
    perturb(p.unet, seed=1)
    return state(p.unet)


def fails(spec, match: str, **kw) -> str:
    with pytest.raises(CheckpointError, match=match) as info:
        load_model(spec, **kw)
    msg = str(info.value)
    assert "\n" not in msg, msg
    return msg


def test_missing_path_and_missing_base(base, unet_sd, tmp_path):
    msg = fails(tmp_path / "nope.pt", "no such file or folder", base=base)
    assert "--model" in msg
    torch.save(unet_sd, tmp_path / "esd.pt")
    msg = fails(tmp_path / "esd.pt", "--base-model", base=None)
    assert "unet-state-dict" in msg
    fails(tmp_path / "esd.pt", r"--base-model .*no such file", base=tmp_path / "nobase")
    fails(tmp_path / "esd.pt", r"--base-model .*model_index.json", base=tmp_path)


def test_empty_folder_and_unknown_files_list_every_format(base, tmp_path):
    (tmp_path / "empty").mkdir()
    msg = fails(tmp_path / "empty", "unknown checkpoint format", base=base)
    assert "empty folder" in msg
    assert all(name in msg for name in format_names())
    (tmp_path / "weights.xyz").write_bytes(random.Random(1).randbytes(4096))
    msg = fails(tmp_path / "weights.xyz", "unknown checkpoint format", base=base)
    assert ".xyz suffix" in msg


def test_an_ac_output_folder_is_a_model_as_it_stands(base, unet_sd, tmp_path):
    """AC's ``save_pretrained`` (and ``hubkit unlearn ac``) write ``out/delta.bin``: --model out loads that file."""
    folder = tmp_path / "ac"
    folder.mkdir()
    torch.save(unet_sd, folder / "delta.bin")
    write_json(folder / "hubkit.json", {"method": "ac", "concept": "Van Gogh"})
    (folder / "notes.txt").write_text("not weights")
    whole, inner = load_model(folder, base=base), load_model(folder / "delta.bin", base=base)
    assert whole.format == inner.format == "unet-state-dict" and whole.fingerprint == inner.fingerprint
    assert whole.metadata["concept"] == "Van Gogh"
    torch.save(unet_sd, folder / "unet.bin")  # two candidates for the UNet: which was meant is not guessed
    fails(folder, "two candidate weight files", base=base)


def test_a_folder_holding_one_checkpoint_file_names_the_file_to_pass(base, unet_sd, tmp_path):
    """A published ``<target>.pt`` copied into a folder: --model folder is no layout, and the fix names the file."""
    folder = tmp_path / "esd"
    folder.mkdir()
    torch.save(unet_sd, folder / "Van Gogh.pt")
    (folder / "notes.txt").write_text("not weights")
    msg = fails(folder, "unknown checkpoint format", base=base)
    assert msg.endswith(f"; fix: pass the file, --model {folder / 'Van Gogh.pt'} (unet-state-dict)"), msg
    load_model(folder / "Van Gogh.pt", base=base)  # the named file loads
    torch.save(unet_sd, folder / "other.pt")
    msg = fails(folder, "unknown checkpoint format", base=base)
    assert msg.endswith("; fix: pass one of the files it holds: Van Gogh.pt (unet-state-dict), other.pt "
                        "(unet-state-dict)"), msg


def test_random_and_truncated_files(base, unet_sd, tmp_path):
    noise = random.Random(0).randbytes(4096)  # seeded: os.urandom began with a pickle's PROTO byte once in CI
    (tmp_path / "r.safetensors").write_bytes(noise)
    fails(tmp_path / "r.safetensors", "not a readable safetensors file", base=base)
    (tmp_path / "r.pt").write_bytes(noise)
    fails(tmp_path / "r.pt", "not a PyTorch checkpoint", base=base)
    (tmp_path / "p.pt").write_bytes(b"\x80\xb6" + noise)  # PROTO 182: the bytes CI drew, no pickle protocol
    fails(tmp_path / "p.pt", "not a PyTorch checkpoint", base=base)

    save_file(unet_sd, str(tmp_path / "u.safetensors"))
    data = (tmp_path / "u.safetensors").read_bytes()
    (tmp_path / "t.safetensors").write_bytes(data[: len(data) // 2])
    fails(tmp_path / "t.safetensors", "truncated", base=base)
    torch.save(unet_sd, tmp_path / "u.pt")
    data = (tmp_path / "u.pt").read_bytes()
    (tmp_path / "t.pt").write_bytes(data[: len(data) // 2])
    fails(tmp_path / "t.pt", "truncated or corrupt", base=base)


def test_wrong_shape_extra_and_missing_keys(base, unet_sd, tmp_path):
    bad = dict(unet_sd)
    k = "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight"
    bad[k] = torch.zeros(7, 7)
    torch.save(bad, tmp_path / "shape.pt")
    msg = fails(tmp_path / "shape.pt", "shape", base=base)
    assert repr(k) in msg and "(7, 7)" in msg

    extra = dict(unet_sd, **{"down_blocks.0.extra.weight": torch.zeros(1), "up_blocks.9.x.bias": torch.zeros(1)})
    torch.save(extra, tmp_path / "extra.pt")
    msg = fails(tmp_path / "extra.pt", "unexpected key 'down_blocks.0.extra.weight' \\(and 1 others\\)", base=base)

    partial = {k: v for k, v in unet_sd.items() if ".attn2." in k}
    save_file(partial, str(tmp_path / "partial.safetensors"))
    msg = fails(tmp_path / "partial.safetensors", "missing key", base=base)
    assert f"(and {len(unet_sd) - len(partial) - 1} others)" in msg and '"keys": "changed"' in msg


def test_pickle_that_needs_full_unpickling(base, unet_sd, tmp_path):
    torch.save({"state_dict": unet_sd, "args": argparse.Namespace(lr=1e-5)}, tmp_path / "esd.pt")
    msg = fails(tmp_path / "esd.pt", "--trust-checkpoint", base=base)
    assert "argparse.Namespace" in msg
    m = load_model(tmp_path / "esd.pt", base=base, trust_checkpoint=True)
    assert m.format == "unet-state-dict" and m.details["trust_checkpoint"] is True
    assert all(torch.equal(m.pipe.unet.state_dict()[k], v) for k, v in unet_sd.items())


def test_single_file_pickle_that_needs_trust_and_a_bad_single_file(sd_base, tmp_path):
    base = sd_base
    p = tiny_sd_layout_pipeline(0)
    sd = diffusers_to_ldm_state_dict(p)
    torch.save({"state_dict": sd, "hparams": argparse.Namespace(x=1)}, tmp_path / "m.ckpt")
    fails(tmp_path / "m.ckpt", "--trust-checkpoint", base=base)
    assert load_model(tmp_path / "m.ckpt", base=base, trust_checkpoint=True).format == "single-file"
    fails(tmp_path / "m.ckpt", "--base-model", base=None, trust_checkpoint=True)
    k = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
    sd[k] = torch.zeros(3, 3)
    save_file(sd, str(tmp_path / "bad.safetensors"))
    msg = fails(tmp_path / "bad.safetensors", "UNet part", base=base)
    assert "attn2.to_k.weight" in msg and "(3, 3)" in msg


def test_lora_for_another_model(base, tmp_path):
    key = "unet.down_blocks.7.attentions.0.proj_in.lora_A.weight"
    save_file({key: torch.zeros(4, 32), key.replace("lora_A", "lora_B"): torch.zeros(32, 4)},
              str(tmp_path / "pytorch_lora_weights.safetensors"))
    msg = fails(tmp_path / "pytorch_lora_weights.safetensors", "LoRA key", base=base)
    assert repr(key) in msg


def test_text_encoder_errors(base, tmp_path):
    from transformers import CLIPTextConfig, CLIPTextModel

    te = tiny_pipeline(0).text_encoder
    cfg = te.config.to_dict()
    cfg["num_hidden_layers"] = 3
    CLIPTextModel(CLIPTextConfig(**{k: v for k, v in cfg.items() if k not in ("architectures",)})).save_pretrained(
        tmp_path / "deeper")
    fails(tmp_path / "deeper", "num_hidden_layers", base=base)
    sd = state(te)
    sd["embeddings.token_embedding.weight"] = sd["embeddings.token_embedding.weight"][:100]
    save_file(sd, str(tmp_path / "te.safetensors"))
    fails(tmp_path / "te.safetensors", "token_embedding", base=base)


def test_diffusers_folder_with_missing_text_encoder_weights(tmp_path):
    from safetensors.torch import load_file

    folder = tmp_path / "model"
    tiny_pipeline(0).save_pretrained(folder)
    te_file = folder / "text_encoder" / "model.safetensors"
    sd = load_file(str(te_file))
    sd.pop("final_layer_norm.weight")
    save_file(sd, str(te_file))  # transformers would silently re-initialise it
    fails(folder, "missing key 'final_layer_norm.weight'", base=None)


def test_unknown_method_and_bad_json(base, tmp_path):
    msg = fails(write_json(tmp_path / "m.json", {"hubkit_method": "no_such_method_xyz"}), "unknown inference-time",
                base=base)
    assert "METHODS.register" in msg
    (tmp_path / "x.safetensors").write_bytes((tmp_path / "m.json").read_bytes())
    (tmp_path / "hubkit.json").write_text("{not json")
    fails(tmp_path / "m.json", r"hubkit.json: not valid JSON", base=base)


def test_bad_device_is_a_config_error(base):
    with pytest.raises(ConfigError, match="--device"):
        load_model(base, base=None, device="gpu0")
