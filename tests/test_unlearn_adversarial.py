"""MACE, Receler and AdvUnlearn on a tiny random SD-1.x pipeline: published layouts, loading through
``hubkit.models.load_model``, what each may change, determinism, metadata, CLI."""

from __future__ import annotations

import argparse
import json
import re

import pytest
import torch

from hubkit.models import load_model
from hubkit.testing import save_tiny_pipeline, tiny_pipeline
from hubkit.unlearn.advunlearn import advunlearn, encode_ids, plain_ids, soft_prompt_ids
from hubkit.unlearn.mace import LORA_FILE, mace
from hubkit.unlearn.receler import receler
from hubkit.unlearn.registry import UNLEARNING

REQUIRED_META = ("method", "concept", "seed", "train_seconds", "train_peak_mem_mb")
FAST_MACE = dict(steps=2, lr=1e-2, pool_size=1, sample_steps=3, progress=False)
FAST_RECELER = dict(rank=4, steps=2, lr=1e-2, sample_steps=3, adv_steps=1, progress=False)
FAST_ADV = dict(steps=2, lr=1e-3, sample_steps=3, attack_steps=1, progress=False)
_ATTN_PROCS = re.compile(r"^(?P<module>.+\.attn2)\.processor\.(?P<proj>to_k|to_v)_lora\.(?P<ud>down|up)\.weight$")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return save_tiny_pipeline(tmp_path_factory.mktemp("tiny") / "base")


@pytest.fixture(scope="module")
def base_state():
    p = tiny_pipeline()
    return {c: {k: v.clone() for k, v in getattr(p, c).state_dict().items()} for c in ("unet", "text_encoder", "vae")}


def _check_meta(meta: dict, method: str, concept: str) -> None:
    for key in REQUIRED_META:
        assert key in meta, key
    assert meta["method"] == method and meta["concept"] == concept
    assert meta["train_seconds"] > 0 and meta["train_peak_mem_mb"] > 0


def _same(module, state: dict) -> bool:
    got = module.state_dict()
    return set(got) == set(state) and all(torch.equal(got[k], state[k]) for k in state)


# --------------------------------------------------------------------------------------------
# MACE
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mace_runs(base_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("mace")
    kw = dict(anchor="a tool", preserve=["Pipkin"], **FAST_MACE)
    return [mace(base_dir, ["knife", "sword"], root / f"run{i}", seed=s, name="blades", **kw)
            for i, s in enumerate((1, 1, 2))]


def test_mace_writes_the_attn_procs_lora_layout(mace_runs):
    from safetensors import safe_open

    out = mace_runs[0]
    assert sorted(p.name for p in out.iterdir()) == ["hubkit.json", LORA_FILE]
    with safe_open(str(out / LORA_FILE), "pt") as f:
        assert f.metadata() == {"format": "pt"}
        keys = list(f.keys())
        ranks = {f.get_tensor(k).shape[0] for k in keys if k.endswith("down.weight")}
    assert keys and all(_ATTN_PROCS.match(k) for k in keys)
    assert len(ranks) == 1  # one rank everywhere: the loader's LoRA scale is 1 for every module
    meta = json.loads((out / "hubkit.json").read_text())
    _check_meta(meta, "mace", "blades")
    assert meta["fused"] is True and sorted(meta["final_loss"]) == ["knife", "sword"]  # one LoRA per concept, fused
    assert meta["cfr_rank"] > 0 and meta["lora_rank"] == ranks.pop()


def test_mace_loads_and_changes_only_attn2_to_k_to_v(mace_runs, base_dir, base_state):
    from safetensors.torch import load_file

    m = load_model(mace_runs[0], base=base_dir)
    assert m.format == "attn-procs-lora" and m.details["lora_fused"] is True
    assert m.details["hub_scheduler"] == "DPMSolverMultistepScheduler"
    lora = load_file(str(mace_runs[0] / LORA_FILE))
    expected = dict(base_state["unet"])
    for key in lora:
        mt = _ATTN_PROCS.match(key)
        if mt["ud"] == "down":
            w = f"{mt['module']}.{mt['proj']}.weight"
            expected[w] = expected[w] + lora[key.replace(".down.", ".up.")] @ lora[key]
    got = m.pipe.unet.state_dict()
    assert set(got) == set(expected)
    changed = {k for k in got if not torch.equal(got[k], base_state["unet"][k])}
    assert changed and all(re.search(r"\.attn2\.to_[kv]\.weight$", k) for k in changed)
    assert all(torch.allclose(got[k], expected[k], atol=1e-6) for k in expected)
    assert _same(m.pipe.text_encoder, base_state["text_encoder"]) and _same(m.pipe.vae, base_state["vae"])


def test_mace_closed_form_stage_is_stored_exactly(base_dir, base_state, tmp_path):
    """Stage (a) alone, stored as low-rank LoRA factors, reproduces the closed-form solution."""
    from hubkit.unlearn.uce import uce_edit

    out = mace(base_dir, "Zorbo", tmp_path / "cfr", lora=False, anchor="a creature", preserve=["Pipkin"],
               templates=("{}", "a photo of {}"), progress=False)
    pipe = tiny_pipeline()
    want = uce_edit(pipe, ["Zorbo", "a photo of Zorbo"], ["a creature", "a photo of a creature"],
                    ["Pipkin", "a photo of Pipkin"], tokens="aligned", lamb=0.1)
    got = load_model(out, base=base_dir).pipe.unet.state_dict()
    assert all(torch.allclose(got[k], want[k], atol=1e-5) for k in want)
    assert not torch.equal(got[next(iter(want))], base_state["unet"][next(iter(want))])


def test_mace_lora_suppresses_the_concepts_attention(base_dir, tmp_path):
    """Stage (b) alone: after training, the concept's tokens get less cross-attention than before."""
    from safetensors.torch import load_file

    from hubkit.unlearn.mace import RecordingProcessor, attn2_modules, attn2_processors, token_positions

    out = mace(base_dir, "Zorbo", tmp_path / "lora", cfr=False, preserve=[], steps=25, lr=5e-2, rank=2,
               pool_size=2, sample_steps=3, progress=False, seed=0)
    lora = load_file(str(out / LORA_FILE))
    pipe = tiny_pipeline()
    emb = encode_ids(pipe.text_encoder, plain_ids(pipe.tokenizer, ["Zorbo"]))
    pos = token_positions(pipe, "Zorbo", "Zorbo")
    x = torch.randn((2, 4, 8, 8), generator=torch.Generator().manual_seed(3))
    mods = attn2_modules(pipe.unet)

    def concept_attention(with_lora: bool) -> float:
        store: list = []
        procs = []
        for n, _ in mods:
            adapters = {p: (lora[f"{n}.processor.{p}_lora.down.weight"], lora[f"{n}.processor.{p}_lora.up.weight"])
                        for p in ("to_k", "to_v")} if with_lora else None
            procs.append(RecordingProcessor(store, adapters))
        with torch.no_grad(), attn2_processors(mods, procs):
            pipe.unet(x, torch.tensor(500), encoder_hidden_states=emb.expand(2, -1, -1))
        return float(sum(p[..., pos].sum(-1).mean() for p in store))

    assert concept_attention(True) < 0.5 * concept_attention(False)


def test_mace_is_deterministic(mace_runs):
    a, b, c = ((p / LORA_FILE).read_bytes() for p in mace_runs)
    assert a == b and a != c


# --------------------------------------------------------------------------------------------
# Receler
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def receler_runs(base_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("receler")
    return [receler(base_dir, "Zorbo", root / f"run{i}", seed=s, **FAST_RECELER) for i, s in enumerate((1, 1, 2))]


def test_receler_writes_the_published_eraser_layout(receler_runs):
    from hubkit.models.formats.receler import ADAPTER_KEYS

    path = receler_runs[0]
    assert path.name == "receler.pt" and sorted(p.name for p in path.parent.iterdir()) == ["hubkit.json", "receler.pt"]
    ckpt = torch.load(path, weights_only=True)
    assert sorted(ckpt) == ["down_blocks.1.attentions.0", "mid_block.attentions.0", "up_blocks.0.attentions.0",
                            "up_blocks.0.attentions.1"]
    for state in ckpt.values():
        assert set(state) == set(ADAPTER_KEYS)
        assert state["down.weight"].shape == (4, 64) and state["up.weight"].shape == (64, 4)
    assert any(state["up.weight"].abs().sum() > 0 for state in ckpt.values())  # trained away from zero-init
    meta = json.loads((path.parent / "hubkit.json").read_text())
    _check_meta(meta, "receler", "Zorbo")
    assert meta["adv_tokens"] == 2 and meta["adapters"] == 4


def test_receler_loads_with_base_weights_untouched(receler_runs, base_dir, base_state):
    m = load_model(receler_runs[0], base=base_dir)
    assert m.format == "receler" and m.details["adapters"] == 4 and m.details["rank"] == 4
    got = m.pipe.unet.state_dict()
    adapters = {k for k in got if ".attn2.adapter." in k}
    assert len(adapters) == 16
    rest = {k.replace(".attn2.attn.", ".attn2."): v for k, v in got.items() if k not in adapters}
    assert set(rest) == set(base_state["unet"]) and all(torch.equal(rest[k], base_state["unet"][k]) for k in rest)
    assert _same(m.pipe.text_encoder, base_state["text_encoder"]) and _same(m.pipe.vae, base_state["vae"])


def test_receler_file_output_and_determinism(receler_runs, base_dir, tmp_path):
    a, b, c = (p.read_bytes() for p in receler_runs)
    assert a == b and a != c
    path = receler(base_dir, "Zorbo", tmp_path / "Zorbo.pt", seed=1, **FAST_RECELER)
    assert path == tmp_path / "Zorbo.pt" and (tmp_path / "Zorbo.hubkit.json").is_file()
    assert path.read_bytes() == a  # same bytes whatever the file is called
    assert load_model(path, base=base_dir).metadata["method"] == "receler"


def test_receler_without_adversary_or_regulariser(base_dir, tmp_path):
    path = receler(base_dir, "Zorbo", tmp_path / "plain", seed=1, **{**FAST_RECELER, "adv_tokens": 0},
                   reg_weight=0.0, xt="noise", pool_size=1)
    meta = json.loads((path.parent / "hubkit.json").read_text())
    assert meta["adv_tokens"] == 0 and meta["xt"] == "noise"


@pytest.mark.parametrize("method", ["receler", "advunlearn"])
def test_context_direction_changes_only_in_context_targets(method, base_dir, tmp_path):
    """ESD's option in the two methods that share its target: on the bare keyword the two directions train the
    same weights; in context they differ."""
    fn, fast = (receler, {**FAST_RECELER, "adv_tokens": 0}) if method == "receler" else (advunlearn, FAST_ADV)

    def run(tag, direction, templates):
        path = fn(base_dir, "Zorbo", tmp_path / tag, seed=1, direction=direction, templates=templates, **fast)
        folder = path if path.is_dir() else path.parent
        weights = b"".join(f.read_bytes() for f in sorted(folder.iterdir()) if f.name != "hubkit.json")
        return weights, json.loads((folder / "hubkit.json").read_text())

    (bare_kw, _), (bare_ctx, meta) = run("bare-kw", "keyword", ("{}",)), run("bare-ctx", "context", ("{}",))
    assert meta["direction"] == "context" and bare_kw == bare_ctx
    assert run("ctx-kw", "keyword", ("a photo of {}",))[0] != run("ctx-ctx", "context", ("a photo of {}",))[0]
    with pytest.raises(ValueError, match="direction must be"):
        fn(base_dir, "Zorbo", tmp_path / "bad", direction="prompt", **fast)


# --------------------------------------------------------------------------------------------
# AdvUnlearn
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def adv_runs(base_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("adv")
    return [advunlearn(base_dir, "weapon", root / f"run{i}", seed=s, **FAST_ADV) for i, s in enumerate((1, 1, 2))]


def test_advunlearn_writes_a_text_encoder_folder(adv_runs):
    out = adv_runs[0]
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "hubkit.json", "model.safetensors"]
    assert "CLIPTextModel" in json.loads((out / "config.json").read_text())["architectures"]
    meta = json.loads((out / "hubkit.json").read_text())
    _check_meta(meta, "advunlearn", "weapon")
    assert meta["retain"] and meta["attack_steps"] == 1


def test_advunlearn_loads_and_changes_only_the_text_encoder(adv_runs, base_dir, base_state):
    m = load_model(adv_runs[0], base=base_dir)
    assert m.format == "text-encoder"
    assert _same(m.pipe.unet, base_state["unet"]) and _same(m.pipe.vae, base_state["vae"])
    assert not _same(m.pipe.text_encoder, base_state["text_encoder"])


def test_advunlearn_is_deterministic(adv_runs):
    a, b, c = ((p / "model.safetensors").read_bytes() for p in adv_runs)
    assert a == b and a != c


def test_soft_tokens_replace_only_their_positions():
    pipe = tiny_pipeline()
    tok, te = pipe.tokenizer, pipe.text_encoder
    ids, pos = soft_prompt_ids(tok, "a knife", 2, "prefix")
    assert ids.shape == (1, tok.model_max_length) and pos == slice(1, 3)
    same = te.get_input_embeddings().weight[ids[0, pos]].detach()
    with torch.no_grad():
        assert torch.allclose(encode_ids(te, ids, same, pos), encode_ids(te, ids), atol=1e-6)
    soft = torch.zeros(2, same.shape[1], requires_grad=True)
    encode_ids(te, ids, soft, pos).sum().backward()
    assert soft.grad is not None and soft.grad.abs().sum() > 0
    ids_s, pos_s = soft_prompt_ids(tok, "a knife", 2, "suffix")
    assert ids_s[0, 1:3].tolist() == tok("a knife", add_special_tokens=False).input_ids and pos_s == slice(3, 5)


# --------------------------------------------------------------------------------------------
# registry and CLI
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mace", "receler", "advunlearn"])
def test_registered_with_cli(name, base_dir):
    method = UNLEARNING.get(name)
    parser = argparse.ArgumentParser()
    method.add_arguments(parser)
    args = parser.parse_args(["--base", str(base_dir), "--concept", "Zorbo", "--out", "x", "--steps", "3"])
    assert args.steps == 3 and args.concept == ["Zorbo"]


def test_cli_run_writes_a_loadable_checkpoint(base_dir, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    method = UNLEARNING.get("advunlearn")
    method.add_arguments(parser)
    args = parser.parse_args(["--base", str(base_dir), "--concept", "Zorbo", "--out", str(tmp_path / "adv"),
                              "--steps", "1", "--attack-steps", "1", "--sample-steps", "2", "--no-progress",
                              "--preset", "paper"])
    assert method.run(args) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "adv")
    assert load_model(tmp_path / "adv", base=base_dir).format == "text-encoder"
