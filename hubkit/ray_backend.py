"""Missing images made by Ray actors on a cluster (``--ray auto|ADDRESS``): one actor per GPU, or CPU actors.

The store on the driver still decides what is missing and claims it (``hubkit.store``); this backend only turns
requests into images (the contract in ``hubkit.backends``). Each actor loads the model itself, from the same paths
the driver loaded it from, so **model paths must be the same on every node** (a shared filesystem or identical
copies): an actor whose model has another fingerprint than the driver's refuses to generate. Images travel back as
uint8 arrays (lossless) and the driver writes them, so the image store needs no shared filesystem.

An image depends only on (model, settings, prompt, seed), so it is bit-identical whichever actor or node makes it
(same torch/diffusers versions and the same kind of device assumed; noise is drawn on the CPU by default).

Environment:

* ``HUBKIT_RAY_ACTORS``: how many actors (default: one per GPU of the cluster, or one per CPU when it has none);
* ``HUBKIT_RAY_NODE_IP``: this machine's address in the cluster, for a machine with several (Ray's
  ``_node_ip_address``; default: Ray's own guess). A Ray instance started here (``--ray auto`` without a running
  cluster) serves this run only and stops with it. Ray (2.5x and later) never registers a node as 127.0.0.1: it
  swaps loopback for the machine's own address, so even a local instance listens there.
"""

from __future__ import annotations

import os
from collections import deque

from hubkit.errors import ConfigError

#: a killed actor is restarted (and its in-flight batch re-run by Ray) this many times
MAX_RESTARTS = 3
MAX_TASK_RETRIES = 3
#: after Ray gave up on an actor, its batch is given to a live or fresh actor this many times more
RESUBMITS = 3


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install 'hubkit[ray]' (or pip install ray)") from None
    return ray


def connect(address: str):
    """``ray``, initialised once per process: ``auto`` joins the running cluster or starts a local instance."""
    ray = _import_ray()
    if ray.is_initialized():
        return ray
    node_ip = os.environ.get("HUBKIT_RAY_NODE_IP", "").strip()
    joined = {"_node_ip_address": node_ip} if node_ip else {}
    try:
        if address == "auto":
            try:
                ray.init(address="auto", log_to_driver=False, **joined)
            except ConnectionError:  # no cluster running: a private one on this machine
                ray.init(include_dashboard=False, log_to_driver=False, **joined)
        else:
            ray.init(address=address, log_to_driver=False, **joined)
    except Exception as exc:  # noqa: BLE001 - any failure to connect is one usage error
        why = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        raise ConfigError(f"--ray {address}: cannot connect to Ray ({why}); start the cluster with `ray start --head` "
                          "(and `ray start --address=HEAD:6379` on the other nodes), then use --ray auto on a node of "
                          "it, or pass its address (HEAD:6379 or ray://HEAD:10001)") from None
    return ray


class _Generator:
    """One Ray actor: holds the pipelines it loaded (by fingerprint) and generates batches with them."""

    def __init__(self, fastpath, trust_checkpoint: bool):
        import ray
        import torch

        self.fastpath = fastpath
        self.trust_checkpoint = trust_checkpoint
        self.device = "cuda" if ray.get_gpu_ids() else "cpu"
        if self.device == "cpu":
            torch.set_num_threads(1)  # one CPU per actor: more threads only fight the other actors for cores
        self.pipes: dict[str, object] = {}
        # the address the node joined the cluster with (ray.util.get_node_ip_address guesses from the routes)
        me = ray.get_runtime_context().get_node_id()
        self.node = next((n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] == me), me)

    def where(self) -> dict:
        return {"node": self.node, "pid": os.getpid(), "device": self.device}

    def _pipe(self, fingerprint: str, source: str, base: str | None, trust_checkpoint: bool):
        if fingerprint in self.pipes:
            return self.pipes[fingerprint]
        import torch

        from hubkit.models import load_model_cached

        loaded = load_model_cached(source, base=base, device=self.device, dtype=getattr(torch, self.fastpath.dtype),
                                   trust_checkpoint=trust_checkpoint)
        self.fastpath.apply(loaded.pipe)
        if loaded.fingerprint != fingerprint:
            raise ConfigError(f"the model on Ray node {self.node} has fingerprint "
                              f"{loaded.fingerprint[:16]}, the driver's is {fingerprint[:16]}: every node must see "
                              f"the same files at {source}" + (f" and {base}" if base else ""))
        # the base and the model under test are what a run uses; older pipelines are let go
        while len(self.pipes) >= 2:
            self.pipes.pop(next(iter(self.pipes)))
        self.pipes[fingerprint] = loaded.pipe
        return loaded.pipe

    def generate(self, model: dict, requests, settings, batch_size: int, generator_device):
        """(uint8 RGB arrays, the batch size it ended with: smaller when a batch ran out of memory)."""
        import numpy as np

        from hubkit.generate import BatchSizer, generate_batches

        pipe = self._pipe(**model)
        sizer = BatchSizer(batch_size)
        arrays = []
        for _, images in generate_batches(pipe, requests, settings, sizer, generator_device=generator_device):
            arrays.extend(np.asarray(im.convert("RGB"), dtype=np.uint8) for im in images)
        return arrays, sizer.size


class RayBackend:
    """Batches fanned out to Ray actors (``hubkit.backends`` contract); actors live from the first run to exit.

    ``address``: ``"auto"`` or a Ray address. ``device``: the run's ``--device`` (``cpu`` keeps to CPU actors even
    on a GPU cluster). ``fastpath``: how the driver set its pipelines up (``hubkit.fastpath.FastPath``); actors do
    the same, so their images have the driver's store keys. ``actors``: how many (default ``HUBKIT_RAY_ACTORS``,
    else one per GPU of the cluster, else one per CPU).
    """

    name = "ray"

    def __init__(self, address: str, *, device: str | None, fastpath, trust_checkpoint: bool,
                 actors: int | None = None):
        self.address = str(address)
        self.fastpath = fastpath
        self.trust_checkpoint = bool(trust_checkpoint)
        self.max_restarts, self.max_task_retries = MAX_RESTARTS, MAX_TASK_RETRIES
        self._ray = connect(self.address)
        resources = self._ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        wants_cpu = str(device or "auto").strip().lower() == "cpu"
        if str(device or "").startswith("cuda") and not gpus:
            raise ConfigError(f"--device {device} --ray {self.address}: the Ray cluster has no GPU; "
                              "use --device auto or cpu, or add GPU nodes (ray start --num-gpus N)")
        self.gpus_per_actor = 1 if gpus and not wants_cpu else 0
        self.parallelism = self._count(actors, gpus if self.gpus_per_actor else int(resources.get("CPU", 1)))
        self._actors: list = []
        self._where: list[dict] = []

    @staticmethod
    def _count(actors: int | None, default: int) -> int:
        if actors is None:
            env = os.environ.get("HUBKIT_RAY_ACTORS", "").strip()
            try:
                actors = int(env) if env else max(1, default)
            except ValueError:
                raise ConfigError(f"HUBKIT_RAY_ACTORS={env!r} is not a whole number") from None
        if actors < 1:
            raise ConfigError(f"the number of Ray actors (HUBKIT_RAY_ACTORS) must be >= 1, got {actors}")
        return int(actors)

    def describe(self) -> dict:
        return {"backend": self.name, "address": self.address, "actors": self.parallelism,
                "gpus_per_actor": self.gpus_per_actor, "nodes": sorted({w["node"] for w in self._where})}

    # ------------------------------------------------------------------ actors
    def _new_actor(self):
        cls = self._ray.remote(_Generator).options(
            num_gpus=self.gpus_per_actor, num_cpus=0 if self.gpus_per_actor else 1,
            max_restarts=self.max_restarts, max_task_retries=self.max_task_retries)
        return cls.remote(self.fastpath, self.trust_checkpoint)

    def _start_actors(self) -> None:
        if self._actors:
            return
        self._actors = [self._new_actor() for _ in range(self.parallelism)]
        # also waits until every actor is up, so a cluster that cannot place them says so here
        self._where = self._ray.get([a.where.remote() for a in self._actors])

    def _replace(self, dead):
        """A fresh actor in place of one Ray gave up on."""
        self._ray.kill(dead)  # make sure it is gone for good (it may only have been unreachable)
        fresh = self._new_actor()
        self._actors = [fresh if a is dead else a for a in self._actors]
        return fresh

    # ------------------------------------------------------------------ the backend contract
    def run(self, model, requests, settings, batch_size, generator_device, on_batch) -> None:
        from PIL import Image

        from hubkit.generate import BatchSizer

        ray = self._ray
        self._start_actors()
        sizer = batch_size if isinstance(batch_size, BatchSizer) else None
        size = sizer.size if sizer else int(batch_size)
        job = {"fingerprint": model.fingerprint, "source": str(model.source), "base": model.details.get("base"),
               "trust_checkpoint": bool(model.details.get("trust_checkpoint", self.trust_checkpoint))}
        queue = deque((s, list(requests[s:s + size])) for s in range(0, len(requests), size))
        idle = list(self._actors)
        running: dict = {}  # object ref -> (start, batch, actor)
        resubmitted: dict[int, int] = {}
        delivered: set[int] = set()
        while queue or running:
            while queue and idle:
                start, batch = queue.popleft()
                actor = idle.pop(0)
                ref = actor.generate.remote(job, batch, settings, size, generator_device)
                running[ref] = (start, batch, actor)
            (ref,), _ = ray.wait(list(running), num_returns=1)
            start, batch, actor = running.pop(ref)
            try:
                arrays, final_size = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                # Ray already restarted the actor and retried the batch as often as allowed: try elsewhere
                resubmitted[start] = resubmitted.get(start, 0) + 1
                if resubmitted[start] > RESUBMITS:
                    raise ConfigError(f"--ray {self.address}: the batch of images {start}..{start + len(batch) - 1} "
                                      f"failed on {RESUBMITS + 1} actors, the last time with "
                                      f"{' '.join(str(exc).split())[:300]}; check the Ray logs "
                                      "(/tmp/ray/session_latest/logs) of the nodes") from None
                queue.appendleft((start, batch))
                idle.append(self._replace(actor))
                continue
            except ray.exceptions.RayTaskError as exc:
                # an error of the generation itself (a ConfigError, a bad checkpoint): the caller gets it as raised
                if isinstance(exc.cause, BaseException):
                    raise exc.cause from None
                raise
            idle.append(actor)
            if sizer and final_size < sizer.size:  # the actor ran out of memory: the rest of the job goes smaller
                while sizer.size > final_size:
                    sizer.halve()
                size = sizer.size
            if start not in delivered:
                delivered.add(start)
                on_batch(start, [Image.fromarray(a) for a in arrays])
