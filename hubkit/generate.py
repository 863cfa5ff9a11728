"""Batched image generation with one seed per image.

HUB seeds the global RNG once and then generates images one by one (reference §2, §10.4 item 25), so an
image depends on every image generated before it: a run cannot be batched, sharded, resumed or
re-ordered without changing every image.  Here each image has its own seed,

    image_seed(prompt_set, prompt_index, image_number, seed)   # sha256-derived, < 2**63

and its own ``torch.Generator``, so an image is a pure function of (model, settings, prompt, seed),
whatever the batch size, order, worker or resume point.

Noise is drawn from a CPU generator by default (``generator_device="cpu"``), so the initial latents are
bit-identical on every machine; diffusers moves them to the pipeline's device.  Pass
``generator_device=None`` to draw on the pipeline's device instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from hubkit.errors import ConfigError
from hubkit.settings import GenerationSettings, normalise_dtype

SEED_BITS = 63


def image_seed(prompt_set: str, prompt_index: int, image_number: int, seed: int) -> int:
    """The seed of one image: sha256 of ``(prompt_set, prompt_index, image_number, seed)``, < 2**63.

    ``prompt_set`` names the set (e.g. ``"target/Van Gogh"``), ``prompt_index`` is the prompt's index in
    its published file, ``image_number`` counts images of that prompt (0..k-1) and ``seed`` is the run's
    base seed.  The four parts are joined unambiguously (JSON), so ``("a", 12, ...)`` and ``("a1", 2, ...)``
    cannot collide.
    """
    payload = json.dumps(["hubkit-image-seed-v1", str(prompt_set), int(prompt_index), int(image_number), int(seed)],
                         ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256(payload.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - SEED_BITS)


@dataclass(frozen=True)
class ImageRequest:
    """One image to make: the prompt, its seed, and an optional negative prompt.

    A request's ``negative_prompt`` wins over ``GenerationSettings.negative_prompt``.
    """

    prompt: str
    seed: int
    negative_prompt: str | None = None

    def __post_init__(self):
        if not isinstance(self.prompt, str):
            raise TypeError(f"ImageRequest.prompt must be a str, got {type(self.prompt).__name__}")
        seed = int(self.seed)
        if not 0 <= seed < 2**64:
            raise ValueError(f"ImageRequest.seed must be in [0, 2**64), got {self.seed}")
        object.__setattr__(self, "seed", seed)


def effective_negative_prompt(request: ImageRequest, settings: GenerationSettings) -> str | None:
    neg = request.negative_prompt if request.negative_prompt is not None else settings.negative_prompt
    return neg or None  # "" and None give the same unconditional embedding in diffusers


def pipe_dtype(pipe) -> str:
    """The dtype the pipeline's UNet runs in, as a settings string (``"float16"``...)."""
    unet = getattr(pipe, "unet", None)
    dtype = getattr(unet, "dtype", None) or getattr(pipe, "dtype", None)
    return normalise_dtype(dtype) if dtype is not None else "float32"


def scheduler_for(pipe, settings: GenerationSettings):
    """The scheduler ``settings`` ask for: the pipeline's own, or ``settings.scheduler`` built from its config."""
    current = pipe.scheduler
    if not settings.scheduler or type(current).__name__ == settings.scheduler:
        return current
    import diffusers

    cls = getattr(diffusers, settings.scheduler, None)
    if cls is None or not hasattr(cls, "from_config"):
        raise ConfigError(f"unknown scheduler {settings.scheduler!r}; use a diffusers scheduler class name "
                          "such as DDIMScheduler, PNDMScheduler, LMSDiscreteScheduler, EulerDiscreteScheduler")
    return cls.from_config(current.config)


def scheduler_record(scheduler) -> dict:
    """Class name and config of a scheduler, without diffusers' bookkeeping keys (``_diffusers_version``...).

    The one description of a scheduler that model fingerprints and image-store keys both hash."""
    config = dict(getattr(scheduler, "config", {}) or {})
    return {"class": type(scheduler).__name__,
            "config": {k: v for k, v in config.items() if not str(k).startswith("_")}}


@contextlib.contextmanager
def scheduler_applied(pipe, settings: GenerationSettings) -> Iterator:
    """Temporarily swap in the scheduler ``settings`` ask for; the pipeline is restored afterwards."""
    original = pipe.scheduler
    wanted = scheduler_for(pipe, settings)
    if wanted is original:
        yield pipe
        return
    pipe.scheduler = wanted
    try:
        yield pipe
    finally:
        pipe.scheduler = original


def check_dtype(pipe, settings: GenerationSettings) -> None:
    actual = pipe_dtype(pipe)
    if actual != settings.dtype:
        raise ConfigError(f"the model runs in {actual} but the generation settings say {settings.dtype}; load the "
                          f"model with dtype={settings.dtype} or set GenerationSettings(dtype={actual!r})")


def _device_of(pipe):
    import torch

    device = getattr(pipe, "_execution_device", None) or getattr(pipe, "device", None)
    return torch.device(device) if device is not None else torch.device("cpu")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a device running out of memory (torch's error, or the RuntimeError older builds raise)."""
    import torch

    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", ())
    return isinstance(exc, oom) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def free_cached_memory() -> None:
    """Give the memory a failed batch held back to the device before a smaller batch is tried."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _call_pipe(pipe, batch: Sequence[ImageRequest], settings: GenerationSettings, device) -> list:
    import torch

    negatives = [effective_negative_prompt(r, settings) for r in batch]
    negative = None if all(n is None for n in negatives) else [n or "" for n in negatives]
    generators = [torch.Generator(device).manual_seed(r.seed % 2**64) for r in batch]
    with torch.inference_mode():
        out = pipe(
            prompt=[r.prompt for r in batch],
            negative_prompt=negative,
            generator=generators,
            num_inference_steps=settings.steps,
            guidance_scale=settings.guidance,
            height=settings.height,
            width=settings.width,
            output_type="pil",
        )
    images = list(out.images if hasattr(out, "images") else out[0])
    if len(images) != len(batch):
        raise RuntimeError(f"the pipeline returned {len(images)} images for a batch of {len(batch)}")
    return images


class BatchSizer:
    """The batch size of one generation job, halved for the rest of the job whenever a batch runs out of memory.

    An image depends only on its own seed, so a smaller batch gives the same pixels: halving loses or repeats
    nothing. ``halvings`` records each halving (size before, size after) for the run's settings."""

    def __init__(self, batch_size: int):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.size = int(batch_size)
        self.halvings: list[tuple[int, int]] = []

    def halve(self) -> None:
        self.halvings.append((self.size, max(1, self.size // 2)))
        self.size = max(1, self.size // 2)


def generate_batches(pipe, requests: Sequence[ImageRequest], settings: GenerationSettings, batch_size, *,
                     generator_device: str | None = "cpu",
                     on_batch: Callable[[int, list], None] | None = None) -> Iterator[tuple[int, list]]:
    """Yield ``(start, images)`` per batch of ``requests`` (``images`` are PIL, in request order).

    ``batch_size`` is an int or a :class:`BatchSizer`; a batch that runs out of memory is retried at half the
    size (and the rest of the job keeps the smaller size). ``on_batch(start, images)`` is called as each batch
    completes, before it is yielded.
    """
    import torch

    sizer = batch_size if isinstance(batch_size, BatchSizer) else BatchSizer(batch_size)
    check_dtype(pipe, settings)
    device = torch.device(generator_device) if generator_device else _device_of(pipe)
    pipe.set_progress_bar_config(disable=True)
    with scheduler_applied(pipe, settings):
        start = 0
        while start < len(requests):
            batch = list(requests[start:start + sizer.size])
            try:
                images = _call_pipe(pipe, batch, settings, device)
            except Exception as exc:  # noqa: BLE001 - only out-of-memory is retried; anything else propagates
                if not is_out_of_memory(exc):
                    raise
                if sizer.size == 1:
                    raise ConfigError("out of memory with one image per batch; free GPU memory (other processes, "
                                      "fewer xdist workers per GPU) or use --dtype float16") from exc
                images = None  # the exception's frames hold the failed batch's tensors: free them outside this block
            if images is None:
                free_cached_memory()
                sizer.halve()
                continue
            if on_batch is not None:
                on_batch(start, images)
            yield start, images
            start += len(batch)


def progress_bar(total: int, desc: str = "", enabled: bool = True):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc or "generating", unit="img", disable=not enabled, dynamic_ncols=True,
                leave=False)


def generate(pipe, requests: Sequence[ImageRequest], settings: GenerationSettings, batch_size: int,
             progress: bool = True, desc: str = "", *, generator_device: str | None = "cpu",
             on_batch: Callable[[int, list], None] | None = None) -> list:
    """Generate one PIL image per request, in request order, ``batch_size`` prompts per pipeline call.

    The progress bar counts images (not batches); the pipeline's own per-step bar is disabled.
    ``on_batch(start, images)`` runs after each batch (the store saves there, so a crash loses at most
    one batch).
    """
    images: list = []
    bar = progress_bar(len(requests), desc, progress)
    try:
        for _, batch_images in generate_batches(pipe, requests, settings, batch_size,
                                                generator_device=generator_device, on_batch=on_batch):
            images.extend(batch_images)
            bar.update(len(batch_images))
    finally:
        bar.close()
    return images
