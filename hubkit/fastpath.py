"""The GPU fast path: how a pipeline is set up to generate quickly, and which of those switches change pixels.

On CUDA it is on by default: float16 weights (``--dtype`` picks bfloat16 or float32), scaled-dot-product attention
(diffusers' ``AttnProcessor2_0``, which torch 2 already uses everywhere; recorded so a run says so), channels-last
UNet memory layout, VAE slicing (the decoder takes one image at a time: the same arithmetic as a batch of one, so
it changes no pixel and keeps decoding from setting the batch size), VAE tiling only when memory is short, and a
batch size chosen from free memory (``choose_batch_size``; a batch that still runs out of memory is halved by
``hubkit.generate``). ``--compile`` (``torch.compile`` of the UNet) is opt-in; its warm-up is timed and reported.

Every switch is recorded in the run's settings (``FastPath.as_dict``). Those that can change pixels (dtype through
``GenerationSettings``; channels-last, compile and VAE tiling through ``key_fields``) are part of each image's store
key, so images made with and without them are never mixed; with all of them off the key is what it always was.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from hubkit.errors import ConfigError

#: the largest batch the free-memory rule picks: beyond it a GPU is saturated and a lost batch costs more
MAX_BATCH = 64
#: fraction of free device memory the chosen batch may plan to use (the rest absorbs fragmentation)
MEMORY_SHARE = 0.8
#: below this much free memory after loading, the VAE decodes in tiles (changes pixels slightly: in the key)
TILING_BELOW_BYTES = 3 * 2**30


@dataclass(frozen=True)
class FastPath:
    dtype: str = "float32"
    attention: str = "sdpa"
    channels_last: bool = False
    vae_slicing: bool = False
    vae_tiling: bool = False
    compile: bool = False

    @classmethod
    def for_device(cls, device: str, *, dtype: str | None = None, compile: bool = False,
                   free_bytes: int | None = None) -> "FastPath":
        """The fast path for ``device``: everything on for CUDA, plain float32 elsewhere (CPU and MPS gain nothing
        measurable from half precision or channels-last, and the micro world's numbers are float32)."""
        from hubkit.settings import normalise_dtype

        cuda = str(device).startswith("cuda")
        chosen = normalise_dtype(dtype) if dtype else ("float16" if cuda else "float32")
        return cls(dtype=chosen, channels_last=cuda, vae_slicing=cuda,
                   vae_tiling=bool(cuda and free_bytes is not None and free_bytes < TILING_BELOW_BYTES),
                   compile=bool(compile))

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def key_fields(self) -> dict:
        """The pixel-changing switches that are on (dtype is in the settings already); {} for the plain path."""
        return {k: True for k in ("channels_last", "compile", "vae_tiling") if getattr(self, k)}

    # ------------------------------------------------------------------ applying it
    def apply(self, pipe) -> dict:
        """Set ``pipe`` up (in place, once: a pipeline shared by two runs must not get two fast paths). Returns what
        was applied, for the run's settings."""
        import torch

        applied = getattr(pipe, "_hubkit_fastpath", None)
        if applied is not None:
            if applied != self:
                raise ConfigError(f"this pipeline was already set up with {applied}, not {self}; load the model again "
                                  "for a run with other fast-path switches")
            return self.as_dict()
        dtype = getattr(torch, self.dtype)
        for name in ("unet", "text_encoder", "vae"):
            module = getattr(pipe, name, None)
            if module is not None and module.dtype != dtype:
                module.to(dtype=dtype)
        unet = getattr(pipe, "unet", None)
        if unet is not None and self.attention == "sdpa" and hasattr(unet, "set_attn_processor"):
            from diffusers.models.attention_processor import AttnProcessor2_0

            # only the plain processors are swapped: a method's own (SLD, adapters) keeps its arithmetic
            plain = {"AttnProcessor", "AttnProcessor2_0"}
            if all(type(p).__name__ in plain for p in unet.attn_processors.values()):
                unet.set_attn_processor(AttnProcessor2_0())
        if unet is not None and self.channels_last:
            unet.to(memory_format=torch.channels_last)
        vae = getattr(pipe, "vae", None)
        if vae is not None and self.vae_slicing and hasattr(vae, "enable_slicing"):
            vae.enable_slicing()
        if vae is not None and self.vae_tiling and hasattr(vae, "enable_tiling"):
            vae.enable_tiling()
        if unet is not None and self.compile:
            pipe.unet = torch.compile(unet)
        pipe._hubkit_fastpath = self
        return self.as_dict()


def key_fields_of(pipe) -> dict:
    """The store-key fields of the fast path ``pipe`` was set up with ({} for a pipeline never set up)."""
    fast = getattr(pipe, "_hubkit_fastpath", None)
    return fast.key_fields() if fast is not None else {}


def time_warmup(pipe, settings, batch_size: int) -> float:
    """Seconds of one throw-away generation at ``batch_size`` (what ``torch.compile`` costs before its first image)."""
    from hubkit.generate import ImageRequest, generate

    start = time.perf_counter()
    requests = [ImageRequest(prompt="warm-up", seed=i) for i in range(batch_size)]
    generate(pipe, requests, settings.replace(steps=min(2, settings.steps)), batch_size, progress=False)
    return time.perf_counter() - start


def choose_batch_size(pipe, settings, device: str, *, probe_images: int = 2) -> int:
    """A batch size that fits the free memory of ``device`` (CUDA only): one throw-away batch of ``probe_images`` at
    two steps measures the peak memory each image adds, and the batch is what ``MEMORY_SHARE`` of the free memory
    holds, capped at ``MAX_BATCH``. Out-of-memory later still halves it (``hubkit.generate``)."""
    import torch

    from hubkit.generate import ImageRequest, generate

    if not str(device).startswith("cuda"):
        raise ConfigError(f"choose_batch_size measures GPU memory; {device!r} is not a CUDA device")
    dev = torch.device(device)
    torch.cuda.synchronize(dev)
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    requests = [ImageRequest(prompt="memory probe", seed=i) for i in range(probe_images)]
    generate(pipe, requests, settings.replace(steps=min(2, settings.steps)), probe_images, progress=False)
    torch.cuda.synchronize(dev)
    per_image = max(1, (torch.cuda.max_memory_allocated(dev) - before) // probe_images)
    free, _total = torch.cuda.mem_get_info(dev)
    return batch_from_memory(free, per_image)


def batch_from_memory(free_bytes: int, per_image_bytes: int) -> int:
    """``MEMORY_SHARE`` of ``free_bytes`` divided by what one image needs, in [1, MAX_BATCH]."""
    return int(max(1, min(MAX_BATCH, (free_bytes * MEMORY_SHARE) // max(1, per_image_bytes))))
