"""Where missing images are made: in this process (``LocalBackend``) or fanned out to a cluster (``hubkit.ray_backend``).

The image store decides *which* images are missing and claims them (``hubkit.store``); a backend only turns
requests into images. Its contract, which the store relies on:

* ``backend.parallelism``: how many batches it works on at once (the store claims that many batches' keys);
* ``backend.run(model, requests, settings, batch_size, generator_device, on_batch)`` makes one image per request
  and calls ``on_batch(start, images)`` for each finished slice ``requests[start:start + len(images)]``, in any
  order, each request exactly once, before returning. An image depends only on (model, settings, prompt, seed),
  so where and in which batch it is made does not change it.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

from hubkit.generate import ImageRequest, generate_batches
from hubkit.settings import GenerationSettings


class Backend(Protocol):
    parallelism: int

    def run(self, model, requests: Sequence[ImageRequest], settings: GenerationSettings, batch_size,
            generator_device: str | None, on_batch: Callable[[int, list], None]) -> None: ...


class LocalBackend:
    """Batches generated one after another with the model's own pipeline, in this process."""

    name = "local"
    parallelism = 1

    def run(self, model, requests, settings, batch_size, generator_device, on_batch) -> None:
        for _ in generate_batches(model.pipe, requests, settings, batch_size, generator_device=generator_device,
                                  on_batch=on_batch):
            pass

    def describe(self) -> dict:
        return {"backend": self.name}


LOCAL = LocalBackend()
