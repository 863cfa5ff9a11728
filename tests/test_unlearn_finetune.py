"""AC, SA and SalUn on a tiny random SD-1.x pipeline: checkpoint formats, what each may change, determinism,
metadata, loading through ``--model`` (``hubkit.models.load_model``) and the CLI entries.

The method modules register themselves in ``UNLEARNING`` on import; they are imported lazily (inside fixtures)
so that collecting this file does not change the registry other test files see.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest
import torch

from hubkit.testing import save_tiny_pipeline

REQUIRED_META = ("method", "concept", "train_seconds", "train_peak_mem_mb")
FAST = dict(steps=3, batch_size=2, num_images=2, sample_steps=2, progress=False)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="module")
def _registry_unchanged():
    """Leave ``UNLEARNING`` as this module found it: entries our imports registered (not yet builtins) go again."""
    from hubkit.unlearn.registry import UNLEARNING

    before = set(UNLEARNING.names())          # loads the builtins first
    yield
    for name in set(UNLEARNING.names()) - before:
        UNLEARNING.unregister(name)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return save_tiny_pipeline(tmp_path_factory.mktemp("tiny-ft") / "base")


@pytest.fixture(scope="module")
def base_state(base_dir):
    from hubkit.unlearn.common import load_base

    return {k: v.clone() for k, v in load_base(base_dir).pipe.unet.state_dict().items()}


def _weights_bytes(path: Path) -> bytes:
    """The tensors of a safetensors file re-serialised without the header metadata (which holds timings)."""
    from safetensors.torch import load_file, save

    return save(load_file(str(path)))


def _check_meta(meta: dict, method: str, concept: str) -> None:
    for key in REQUIRED_META:
        assert key in meta, key
    assert meta["method"] == method and meta["concept"] == concept
    assert meta["train_seconds"] > 0 and meta["train_peak_mem_mb"] > 0


def _loaded_unet_state(ckpt: Path, base_dir: Path) -> tuple[dict, dict]:
    from hubkit.models import load_model

    model = load_model(ckpt, base=base_dir)
    return model.pipe.unet.state_dict(), model.details


# --------------------------------------------------------------------------------------------
# AC
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ac_runs(base_dir, tmp_path_factory):
    from hubkit.unlearn.ac import ac

    root = tmp_path_factory.mktemp("ac")
    opts = dict(FAST, anchor="a painting", templates=("a painting in the style of {}",), lr=1e-3)
    return [ac(base_dir, "Pointelli", root / f"run{i}", seed=s, **opts) for i, s in enumerate((1, 1, 2))]


def test_ac_writes_the_published_delta_layout(ac_runs, base_state):
    path = ac_runs[0]
    assert path.name == "delta.bin" and sorted(p.name for p in path.parent.iterdir()) == ["delta.bin", "hubkit.json"]
    delta = torch.load(path, map_location="cpu", weights_only=True)
    assert set(delta) == {"unet"}
    kv = {k for k in base_state if k.endswith((".attn2.to_k.weight", ".attn2.to_v.weight"))}
    assert kv and set(delta["unet"]) == kv                       # every attn2 to_k/to_v weight, nothing else
    assert all(not torch.equal(delta["unet"][k], base_state[k]) for k in kv)
    meta = json.loads((path.parent / "hubkit.json").read_text())
    _check_meta(meta, "ac", "Pointelli")
    assert meta["anchor"] == "a painting" and meta["prompts"] == ["a painting in the style of Pointelli"]
    assert "keys" not in meta                                     # AC's layout declares itself


def test_ac_loads_as_is_and_changes_only_key_value_projections(ac_runs, base_dir, base_state):
    state, details = _loaded_unet_state(ac_runs[0], base_dir)
    assert details["method_hint"] == "ac"
    delta = torch.load(ac_runs[0], map_location="cpu", weights_only=True)["unet"]
    changed = {k for k, v in state.items() if not torch.equal(v, base_state[k])}
    assert changed == set(delta)
    assert all(torch.equal(state[k], delta[k]) for k in delta)


def test_ac_is_deterministic(ac_runs):
    a, b, c = (p.read_bytes() for p in ac_runs)
    assert a == b and a != c


def test_ac_options(base_dir, tmp_path, base_state):
    from hubkit.unlearn.ac import ac

    # noise-based loss, no regulariser, per-template anchors, out given as a .bin file, default anchor by category
    out = ac(base_dir, "Pointelli", tmp_path / "ac.bin", seed=0, loss="noise", reg_weight=0.0,
             templates=("{}", "a photo by {}"), anchor_templates=("{}", "a photo by an artist"), **FAST)
    assert out == tmp_path / "ac.bin" and (tmp_path / "ac.hubkit.json").is_file()
    meta = json.loads((tmp_path / "ac.hubkit.json").read_text())
    assert meta["anchors"] == ["a painting", "a photo by an artist"] and meta["loss"] == "noise"
    with pytest.raises(ValueError):
        ac(base_dir, "Pointelli", tmp_path / "x", loss="bogus", **FAST)


# --------------------------------------------------------------------------------------------
# SA
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sa_runs(base_dir, tmp_path_factory):
    from hubkit.unlearn.sa import sa

    root = tmp_path_factory.mktemp("sa")
    opts = dict(FAST, fisher_samples=2, lr=1e-3)
    return [sa(base_dir, "Zorbo", root / f"run{i}", seed=s, **opts) for i, s in enumerate((1, 1, 2))]


def test_sa_writes_the_full_unet(sa_runs, base_dir, base_state):
    from safetensors.torch import load_file

    from hubkit.unlearn.common import read_checkpoint_metadata

    ckpt = sa_runs[0]
    assert sorted(p.name for p in ckpt.iterdir()) == ["hubkit.json", "unet.safetensors"]
    saved = load_file(str(ckpt / "unet.safetensors"))
    assert set(saved) == set(base_state)                          # a full model, like SA's published checkpoints
    meta = read_checkpoint_metadata(ckpt)
    assert meta == read_checkpoint_metadata(ckpt / "unet.safetensors")
    _check_meta(meta, "sa", "Zorbo")
    assert meta["keys"] == "all" and meta["surrogate"] == "an animated character" and meta["lmbda"] == 50.0
    state, _ = _loaded_unet_state(ckpt, base_dir)
    assert all(torch.equal(state[k], saved[k]) for k in saved)
    changed = {k for k in saved if not torch.equal(saved[k], base_state[k])}
    assert ".attn2." in " ".join(changed) and any(".attn2." not in k for k in changed)   # any parameter may move


def test_sa_is_deterministic(sa_runs):
    a, b, c = (_weights_bytes(p / "unet.safetensors") for p in sa_runs)
    assert a == b and a != c


def test_sa_noise_surrogate(base_dir, tmp_path):
    from hubkit.unlearn.common import read_checkpoint_metadata
    from hubkit.unlearn.sa import sa

    ckpt = sa(base_dir, "a red bicycle", tmp_path / "sa", seed=0, fisher_samples=1, replay=["a cup"], **FAST)
    meta = read_checkpoint_metadata(ckpt)
    assert meta["surrogate"] == "noise" and meta["replay"] == ["a cup"]


# --------------------------------------------------------------------------------------------
# SalUn
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def salun_runs(base_dir, tmp_path_factory):
    from hubkit.unlearn.salun import salun

    root = tmp_path_factory.mktemp("salun")
    opts = dict(FAST, mask_batches=2, lr=1e-3, save_mask=True)
    return [salun(base_dir, "weapon", root / f"run{i}", seed=s, **opts) for i, s in enumerate((1, 1, 2))]


def test_salun_changes_only_salient_weights(salun_runs, base_dir, base_state):
    from safetensors.torch import load_file

    from hubkit.unlearn.common import read_checkpoint_metadata
    from hubkit.unlearn.salun import MASK_FILE

    ckpt = salun_runs[0]
    assert sorted(p.name for p in ckpt.iterdir()) == ["hubkit.json", MASK_FILE, "unet.safetensors"]
    mask = load_file(str(ckpt / MASK_FILE))
    saved = load_file(str(ckpt / "unet.safetensors"))
    meta = read_checkpoint_metadata(ckpt)
    _check_meta(meta, "salun", "weapon")
    assert meta["keys"] == "changed" and meta["mask_ratio"] == 0.5
    n_masked = sum(int(m.sum()) for m in mask.values())
    total = sum(m.numel() for m in mask.values())
    assert n_masked == meta["masked_elements"] and abs(n_masked / total - 0.5) < 0.01     # above the median
    assert set(saved) == {k for k, m in mask.items() if m.any()}
    state, _ = _loaded_unet_state(ckpt, base_dir)
    moved = 0
    for k, base_v in base_state.items():
        diff = state[k] != base_v
        if k in mask:
            assert not (diff & ~mask[k]).any(), k                 # nothing outside the mask moves
            moved += int(diff.sum())
        else:
            assert not diff.any(), k                              # buffers
    assert moved > 0.5 * n_masked                                  # and the salient weights do


def test_salun_is_deterministic(salun_runs):
    a, b, c = (_weights_bytes(p / "unet.safetensors") for p in salun_runs)
    assert a == b and a != c


# --------------------------------------------------------------------------------------------
# registry / CLI entries (the CLI lists only builtins: drive the registry objects directly)
# --------------------------------------------------------------------------------------------
def test_cli_entries(base_dir, tmp_path, capsys):
    from hubkit.unlearn.registry import UNLEARNING
    from hubkit.unlearn.ac import ac
    from hubkit.unlearn.sa import sa
    from hubkit.unlearn.salun import salun

    common = ["--steps", "1", "--batch-size", "1", "--num-images", "1", "--sample-steps", "1", "--no-progress",
              "--preset", "paper"]
    extra = {"ac": ["--anchor", "a cup", "--no-scale-lr"], "sa": ["--fisher-samples", "1", "--surrogate", "noise"],
             "salun": ["--mask-batches", "1", "--mask-ratio", "0.25"]}
    for method, fn in (("ac", ac), ("sa", sa), ("salun", salun)):
        entry = UNLEARNING.get(method)
        assert entry.function is fn and entry.help
        parser = argparse.ArgumentParser()
        entry.add_arguments(parser)
        argv = ["--base", str(base_dir), "--concept", "knife", "--concept", "axe", "--out", str(tmp_path / method),
                *common, *extra[method]]
        assert entry.run(parser.parse_args(argv)) == 0
        out = Path(capsys.readouterr().out.strip().splitlines()[-1])
        meta_file = out.parent / "hubkit.json" if method == "ac" else out / "hubkit.json"
        meta = json.loads(meta_file.read_text())
        assert meta["method"] == method and meta["concept"] == "knife, axe" and meta["base"] == "base"
    assert json.loads((tmp_path / "ac" / "hubkit.json").read_text())["effective_lr"] == 2e-6
    assert json.loads((tmp_path / "salun" / "hubkit.json").read_text())["mask_ratio"] == 0.25
    assert torch.load(io.BytesIO((tmp_path / "ac" / "delta.bin").read_bytes()), weights_only=True)["unet"]
