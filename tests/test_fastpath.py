"""The GPU fast path, checked where it can be on a CPU: out-of-memory halving loses and repeats no image, the batch
size follows free memory, pixel-changing switches enter the store key (and the plain path's keys never changed),
the switches are applied to a real pipeline, and the options reach the run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hubkit.errors import ConfigError
from hubkit.fastpath import MAX_BATCH, FastPath, batch_from_memory, key_fields_of
from hubkit.generate import BatchSizer, ImageRequest, generate, generate_batches
from hubkit.settings import GenerationSettings
from hubkit.store import ImageStore, image_key, key_fields

FAST = GenerationSettings(steps=2, height=32, width=32)


class OutOfMemoryAbove:
    """Wraps a pipeline: a call with more than ``limit`` prompts raises torch's out-of-memory error (as CUDA would)."""

    def __init__(self, pipe, limit: int, error=None):
        self.pipe, self.limit, self.calls = pipe, limit, []
        self.error = error or torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def __getattr__(self, name):
        return getattr(self.pipe, name)

    def __call__(self, **kwargs):
        self.calls.append(len(kwargs["prompt"]))
        if len(kwargs["prompt"]) > self.limit:
            raise self.error
        return self.pipe(**kwargs)


@pytest.fixture(scope="module")
def pipe():
    from hubkit.testing import tiny_pipeline

    return tiny_pipeline()


def requests(n: int) -> list[ImageRequest]:
    return [ImageRequest(prompt=f"a photo of thing {i}", seed=1000 + i) for i in range(n)]


def pixels(images) -> list[np.ndarray]:
    return [np.asarray(im) for im in images]


def test_out_of_memory_halves_the_batch_and_loses_or_repeats_nothing(pipe):
    reference = pixels(generate(pipe, requests(7), FAST, batch_size=1, progress=False))
    flaky = OutOfMemoryAbove(pipe, limit=2)
    sizer = BatchSizer(8)
    seen = []
    got = list(generate_batches(flaky, requests(7), FAST, sizer, on_batch=lambda s, ims: seen.append((s, len(ims)))))
    assert sizer.size == 2 and sizer.halvings == [(8, 4), (4, 2)]
    # every request once, in order, in batches of the halved size
    assert seen == [(0, 2), (2, 2), (4, 2), (6, 1)]
    images = [im for _, batch in got for im in batch]
    # the same pictures as one image per call (to the last bit of rounding, as for any batch size: test_generate)
    assert len(images) == 7 and max(np.abs(a.astype(int) - b.astype(int)).max()
                                    for a, b in zip(pixels(images), reference)) <= 1
    # the halving is kept for the next job of the run: no second out-of-memory
    flaky.calls.clear()
    list(generate_batches(flaky, requests(3), FAST, sizer))
    assert flaky.calls == [2, 1]


def test_out_of_memory_in_the_store_writes_every_image_once(tmp_path, pipe):
    from dataclasses import dataclass

    @dataclass
    class Loaded:
        pipe: object
        fingerprint: str = "tiny"

    store = ImageStore(tmp_path)
    sizer = BatchSizer(4)
    paths = store.ensure(Loaded(OutOfMemoryAbove(pipe, limit=1)), requests(5), FAST, batch_size=sizer, progress=False)
    assert all(p.is_file() for p in paths) and store.generated == 5 and sizer.size == 1
    assert store.ensure(Loaded(pipe), requests(5), FAST, batch_size=4, progress=False) == paths
    assert store.generated == 5


def test_out_of_memory_with_one_image_is_one_clear_line(pipe):
    with pytest.raises(ConfigError, match="out of memory with one image per batch; free GPU memory"):
        list(generate_batches(OutOfMemoryAbove(pipe, limit=0), requests(2), FAST, 2))


def test_other_errors_are_not_retried(pipe):
    broken = OutOfMemoryAbove(pipe, limit=0, error=ValueError("not a memory problem"))
    with pytest.raises(ValueError, match="not a memory problem"):
        list(generate_batches(broken, requests(4), FAST, 4))
    assert broken.calls == [4]


@pytest.mark.parametrize("free, per_image, expected", [
    (80 * 2**30, 2**30, MAX_BATCH),      # a big GPU: capped
    (10 * 2**30, 2**30, 8),              # 80% of 10 GiB at 1 GiB per image
    (2**29, 2**30, 1),                   # not even one fits: 1, and out-of-memory will say so
])
def test_batch_size_from_free_memory(free, per_image, expected):
    assert batch_from_memory(free, per_image) == expected


def test_choose_batch_size_needs_cuda(pipe):
    from hubkit.fastpath import choose_batch_size

    with pytest.raises(ConfigError, match="not a CUDA device"):
        choose_batch_size(pipe, FAST, "cpu")


def test_fast_path_per_device():
    assert FastPath.for_device("cpu") == FastPath()  # the CPU path is the plain one: the micro world's numbers
    cuda = FastPath.for_device("cuda:1")
    assert (cuda.dtype, cuda.attention, cuda.channels_last, cuda.vae_slicing, cuda.vae_tiling, cuda.compile) == (
        "float16", "sdpa", True, True, False, False)
    assert FastPath.for_device("cuda", dtype="bf16", compile=True).dtype == "bfloat16"
    assert FastPath.for_device("cuda", free_bytes=2**30).vae_tiling  # memory short: tiles
    assert FastPath.for_device("cpu", dtype="fp16").dtype == "float16"


def test_pixel_changing_switches_are_in_the_key_and_plain_keys_never_changed():
    request = ImageRequest(prompt="a dog", seed=3)
    sched = {"class": "DDIMScheduler", "config": {}}
    plain = key_fields("fp", sched, request, FAST, "float32", FastPath().key_fields())
    assert "fastpath" not in plain  # with every switch off the key is what it always was
    assert image_key(plain) == image_key(key_fields("fp", sched, request, FAST, "float32"))
    keys = {image_key(plain)}
    for switch in ("channels_last", "compile", "vae_tiling"):
        keys.add(image_key(key_fields("fp", sched, request, FAST, "float32",
                                      FastPath(**{switch: True}).key_fields())))
    assert len(keys) == 4
    # VAE slicing is the arithmetic of a batch of one (the batch size is not in the key either)
    assert FastPath(vae_slicing=True).key_fields() == {}


def test_fast_path_is_applied_to_a_real_pipeline():
    from hubkit.testing import tiny_pipeline

    pipe = tiny_pipeline()
    reference = pixels(generate(pipe, requests(3), FAST, batch_size=3, progress=False))
    fast = FastPath(channels_last=True, vae_slicing=True)
    assert fast.apply(pipe)["channels_last"] is True
    assert pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert pipe.vae.use_slicing
    assert {type(p).__name__ for p in pipe.unet.attn_processors.values()} == {"AttnProcessor2_0"}
    assert key_fields_of(pipe) == {"channels_last": True}
    images = pixels(generate(pipe, requests(3), FAST, batch_size=3, progress=False))
    # channels-last is a layout, not other arithmetic: on the CPU the pixels stay within rounding of the plain path
    assert all(np.abs(a.astype(int) - b.astype(int)).max() <= 2 for a, b in zip(images, reference))
    assert fast.apply(pipe) == fast.as_dict()  # once is enough; again is a no-op
    with pytest.raises(ConfigError, match="already set up"):
        FastPath(vae_tiling=True).apply(pipe)


def test_compile_wraps_the_unet_and_its_warmup_is_timed(monkeypatch):
    from hubkit.fastpath import time_warmup
    from hubkit.testing import tiny_pipeline

    compiled = []
    monkeypatch.setattr(torch, "compile", lambda module: compiled.append(module) or module)
    pipe = tiny_pipeline()
    FastPath(compile=True).apply(pipe)
    assert compiled == [pipe.unet] and key_fields_of(pipe) == {"compile": True}
    assert time_warmup(pipe, FAST, 2) > 0


def test_half_precision_settings_are_checked_against_the_pipeline(pipe):
    with pytest.raises(ConfigError, match="runs in float32 but the generation settings say float16"):
        list(generate_batches(pipe, requests(1), FAST.replace(dtype="float16"), 1))


@pytest.mark.parametrize("args, needle", [
    (["--dtype", "int8"], "*--dtype*'int8' is not a dtype; use float16, bfloat16 or float32*"),
])
def test_bad_dtype_is_a_usage_error(pytester, args, needle):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([needle])


def test_scale_options_reach_the_run(pytester):
    pytester.makepyfile(
        """
        def test_options(pytestconfig):
            o = pytestconfig.hubkit_options
            assert (o["dtype"], o["compile"], o["ray"]) == ("bfloat16", True, "auto")
        """
    )
    pytester.runpytest("--dtype", "bf16", "--compile", "--ray", "auto").assert_outcomes(passed=1)


@pytest.mark.parametrize("args, dist", [
    (["-n", "2"], "loadgroup"),            # -n alone: one worker per concept
    (["-n", "2", "--dist", "load"], "load"),  # the user's --dist wins
    ([], "no"),
])
def test_n_workers_group_tests_by_concept(pytester, args, dist):
    # the controller decides the distribution (workers see dist "no"): it writes down what it decided
    pytester.makeconftest(
        """
        def pytest_sessionstart(session):
            if not hasattr(session.config, "workerinput"):
                open("dist.txt", "w").write(session.config.option.dist)
        """
    )
    pytester.makepyfile("def test_x(): pass")
    pytester.runpytest(*args).assert_outcomes(passed=1)
    assert (pytester.path / "dist.txt").read_text() == dist


def test_judges_follow_the_run_onto_its_device_unless_their_table_pins_one():
    from hubkit.judges.config import JudgeSpec

    spec = JudgeSpec("clip-score", '{"batch_size": 8}', "clip-score")
    moved = spec.on_device("cuda:1")
    assert moved.options == {"batch_size": 8, "device": "cuda:1"}
    pinned = JudgeSpec("clip-score", '{"device": "cpu"}', "clip-score")
    assert pinned.on_device("cuda:1") is pinned
    # a judge without a device option is left as it is
    assert JudgeSpec.named("micro-detector").on_device("cuda") == JudgeSpec.named("micro-detector")
