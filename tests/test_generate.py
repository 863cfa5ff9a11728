"""Generation settings, per-image seeds and batched generation (on the tiny random-weight pipeline)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from hubkit.errors import ConfigError
from hubkit.generate import ImageRequest, generate, image_seed
from hubkit.settings import GenerationSettings

FAST = GenerationSettings(steps=2, guidance=7.5, height=32, width=32)


@pytest.fixture(scope="module")
def pipe():
    from hubkit.testing import tiny_pipeline

    return tiny_pipeline()


def arr(im):
    return np.asarray(im, dtype=np.int16)


# -- settings -------------------------------------------------------------------------------------------
def test_settings_defaults_are_sd1():
    s = GenerationSettings()
    assert (s.steps, s.guidance, s.height, s.width, s.dtype, s.negative_prompt, s.scheduler) == (
        50, 7.5, 512, 512, "float32", None, None)
    with pytest.raises(Exception):
        s.steps = 10  # frozen


def test_settings_from_model_folder(tmp_path):
    assert GenerationSettings.from_model_folder(tmp_path) == GenerationSettings()
    (tmp_path / "hubkit.json").write_text(json.dumps(
        {"steps": 20, "guidance": 5.0, "height": 64, "width": 64, "method": "esd", "dtype": "fp16"}))
    s = GenerationSettings.from_model_folder(tmp_path)
    assert (s.steps, s.guidance, s.height, s.width, s.dtype) == (20, 5.0, 64, 64, "float16")
    # a file inside the folder finds the hubkit.json beside it; overrides win
    ckpt = tmp_path / "unet.safetensors"
    ckpt.write_bytes(b"")
    assert GenerationSettings.from_model_folder(ckpt, steps=3).steps == 3
    (tmp_path / "hubkit.json").write_text(json.dumps({"generation": {"image_size": 96}}))
    s = GenerationSettings.from_model_folder(tmp_path)
    assert (s.height, s.width, s.steps) == (96, 96, 50)


def test_settings_reject_bad_values(tmp_path):
    for bad in ({"steps": 0}, {"height": 30}, {"dtype": "int8"}, {"negative_prompt": 3}):
        with pytest.raises(ConfigError):
            GenerationSettings(**bad)
    (tmp_path / "hubkit.json").write_text("{not json")
    with pytest.raises(ConfigError, match="hubkit.json"):
        GenerationSettings.from_model_folder(tmp_path)


# -- seeds ----------------------------------------------------------------------------------------------
def test_image_seed_is_stable_and_bounded():
    s = image_seed("target/Van Gogh", 12, 0, 1)
    assert s == image_seed("target/Van Gogh", 12, 0, 1)
    assert 0 <= s < 2**63
    variants = {image_seed("target/Van Gogh", 12, 0, 1), image_seed("target/Van Gogh", 12, 1, 1),
                image_seed("target/Van Gogh", 13, 0, 1), image_seed("target/Van Gogh", 12, 0, 2),
                image_seed("target/Van Gog", 12, 0, 1), image_seed("target/Van Gogh1", 2, 0, 1)}
    assert len(variants) == 6


@hsettings(max_examples=200, deadline=None)
@given(st.text(max_size=20), st.integers(0, 10**6), st.integers(0, 100), st.integers(0, 2**31))
def test_image_seed_range(prompt_set, index, number, seed):
    assert 0 <= image_seed(prompt_set, index, number, seed) < 2**63


def requests_for(prompt_set, pairs, seed):
    """One request per (index, text), seeded as the session seeds its first image of each prompt."""
    return [ImageRequest(text, image_seed(prompt_set, index, 0, seed)) for index, text in pairs]


# -- generation -----------------------------------------------------------------------------------------
def test_images_do_not_depend_on_batch_size_or_order(pipe):
    reqs = requests_for("t", [(0, "a cat"), (1, "a dog"), (2, "a red car")], seed=1)
    a = generate(pipe, reqs, FAST, batch_size=3, progress=False)
    b = generate(pipe, list(reversed(reqs)), FAST, batch_size=1, progress=False)[::-1]
    c = generate(pipe, reqs, FAST, batch_size=2, progress=False)
    assert len(a) == 3 and a[0].size == (32, 32) and a[0].mode == "RGB"
    for x, y, z in zip(a, b, c):
        assert np.abs(arr(x) - arr(y)).max() <= 1
        assert np.abs(arr(x) - arr(z)).max() <= 1
    assert np.abs(arr(a[0]) - arr(a[1])).max() > 0  # different prompt+seed -> different image


def test_seed_and_negative_prompt_matter(pipe):
    base = ImageRequest("a cat", 1)
    other_seed = ImageRequest("a cat", 2)
    neg = ImageRequest("a cat", 1, negative_prompt="a dog")
    empty_neg = ImageRequest("a cat", 1, negative_prompt="")
    imgs = generate(pipe, [base, other_seed, neg, empty_neg], FAST, batch_size=4, progress=False)
    assert np.abs(arr(imgs[0]) - arr(imgs[1])).max() > 0
    assert np.abs(arr(imgs[0]) - arr(imgs[2])).max() > 0
    assert np.abs(arr(imgs[0]) - arr(imgs[3])).max() <= 1  # "" == no negative prompt
    # the settings' negative prompt applies when the request has none
    via_settings = generate(pipe, [base], FAST.replace(negative_prompt="a dog"), batch_size=1, progress=False)[0]
    assert np.abs(arr(via_settings) - arr(imgs[2])).max() <= 1


def test_progress_counts_images_and_pipeline_bar_is_off(pipe, capsys):
    reqs = requests_for("p", [(i, f"prompt {i}") for i in range(3)], seed=0)
    generate(pipe, reqs, FAST, batch_size=2, progress=True, desc="target/x")
    err = capsys.readouterr().err
    assert "target/x" in err and "/3 [" in err and "img" in err  # tqdm may skip the last refresh
    assert pipe._progress_bar_config.get("disable") is True


def test_scheduler_setting_is_applied_and_restored(pipe):
    req = [ImageRequest("a cat", 5)]
    before = type(pipe.scheduler)
    default = generate(pipe, req, FAST, batch_size=1, progress=False)[0]
    euler = generate(pipe, req, FAST.replace(scheduler="EulerDiscreteScheduler"), batch_size=1, progress=False)[0]
    assert type(pipe.scheduler) is before
    assert np.abs(arr(default) - arr(euler)).max() > 0
    with pytest.raises(ConfigError, match="unknown scheduler"):
        generate(pipe, req, FAST.replace(scheduler="NoSuchScheduler"), batch_size=1, progress=False)


def test_dtype_mismatch_is_a_config_error(pipe):
    with pytest.raises(ConfigError, match="float16"):
        generate(pipe, [ImageRequest("a", 1)], FAST.replace(dtype="float16"), batch_size=1, progress=False)


def test_on_batch_sees_each_batch(pipe):
    seen = []
    reqs = requests_for("b", [(i, f"p{i}") for i in range(3)], seed=0)
    generate(pipe, reqs, FAST, batch_size=2, progress=False, on_batch=lambda start, ims: seen.append((start, len(ims))))
    assert seen == [(0, 2), (2, 1)]
