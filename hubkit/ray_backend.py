"""Missing images made by Ray actors on a cluster (``--ray auto|ADDRESS``): one actor per GPU, or CPU actors.

The store on the driver still decides what is missing and claims it (``hubkit.store``); this backend only turns
requests into images (the contract in ``hubkit.backends``). Each actor loads the model itself, from the same paths
the driver loaded it from, so **model paths must be the same on every node** (a shared filesystem or identical
copies): an actor whose model has another fingerprint than the driver's refuses to generate. Images travel back as
uint8 arrays (lossless) and the driver writes them, so the image store needs no shared filesystem.

An image depends only on (model, settings, prompt, seed), so it is bit-identical whichever actor or node makes it
(same torch/diffusers versions, the same kind of device and, on CPUs, the same torch thread count assumed: CPU kernels
sum in another order with another thread count, which can move a pixel by one level; noise is drawn on the CPU by
default).

Environment:

* ``HUBKIT_RAY_ACTORS``: how many actors (default: one per GPU of the cluster, or one per CPU when it has none);
* ``HUBKIT_RAY_NODE_IP``: this machine's address in the cluster, for a machine with several (Ray's
  ``_node_ip_address``; default: Ray's own guess). A Ray instance started here (``--ray auto`` without a running
  cluster) serves this run only and stops with it. Ray (2.60, checked) never registers a node as 127.0.0.1: it swaps
  loopback for the machine's own address, so even a local instance listens there.
"""

from __future__ import annotations

import os
import socket
from collections import deque
from pathlib import Path

from hubkit.errors import ConfigError

#: a killed actor is restarted (and its in-flight batch re-run by Ray) this many times
MAX_RESTARTS = 3
MAX_TASK_RETRIES = 3
#: after Ray gave up on an actor, its batch is given to a fresh actor this many times more
RESUBMITS = 3
#: seconds for every actor to be placed and started (import torch); longer means the cluster lacks the resources
ACTOR_START_S = 600


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install 'hubkit[ray]' (or pip install ray)") from None
    return ray


def _fix_hint() -> str:
    return ("start the cluster with `ray start --head` (and `ray start --address=HEAD:6379` on the other nodes), then "
            "use --ray auto on a node of it, or pass its address (HEAD:6379 or ray://HEAD:10001)")


def _probe(address: str) -> None:
    """Fail in seconds on a HOST:PORT nothing listens on (ray.init retries it for minutes)."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as exc:
        raise ConfigError(f"--ray {address}: nothing answers there ({type(exc).__name__}: {exc}); "
                          + _fix_hint()) from None


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
            _probe(address)
            ray.init(address=address, log_to_driver=False, **joined)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to connect is one usage error
        why = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        raise ConfigError(f"--ray {address}: cannot connect to Ray ({why}); " + _fix_hint() + " (a cluster with "
                          "token authentication also needs its token here: ~/.ray/auth_token or RAY_AUTH_TOKEN, "
                          "with RAY_AUTH_MODE=token)") from None
    return ray


class _Generator:
    """One Ray actor: holds the pipelines it loaded and generates batches with them."""

    def __init__(self):
        import ray
        import torch

        self.device = "cuda" if ray.get_gpu_ids() else "cpu"
        if self.device == "cpu":
            torch.set_num_threads(1)  # one CPU per actor: more threads only fight the other actors for cores
        self.pipes: dict[tuple, object] = {}
        # the address the node joined the cluster with (ray.util.get_node_ip_address guesses from the routes)
        me = ray.get_runtime_context().get_node_id()
        self.node = next((n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] == me), me)

    def where(self) -> dict:
        return {"node": self.node, "pid": os.getpid(), "device": self.device}

    def _pipe(self, fingerprint: str, source: str, base: str | None, trust_checkpoint: bool, dtype: str, fastpath):
        """The driver's pipeline, loaded here from the same files in the same dtype and set up the same way (so
        every image has the key the driver computed for it)."""
        wanted = (fingerprint, dtype, fastpath)
        if wanted in self.pipes:
            return self.pipes[wanted]
        import torch

        from hubkit.models import load_model_cached

        loaded = load_model_cached(source, base=base, device=self.device, dtype=getattr(torch, dtype),
                                   trust_checkpoint=trust_checkpoint)
        if loaded.fingerprint != fingerprint:
            raise ConfigError(f"the model on Ray node {self.node} has fingerprint {loaded.fingerprint[:16]}, the "
                              f"driver's is {fingerprint[:16]}: every node must see the same files at {source}"
                              + (f" and {base}" if base else ""))
        if fastpath is not None:
            fastpath.apply(loaded.pipe)
        # a run uses the base and the model under test: older pipelines are let go
        while len(self.pipes) >= 2:
            self.pipes.pop(next(iter(self.pipes)))
        self.pipes[wanted] = loaded.pipe
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
    on a GPU cluster). ``fastpath``: the run's ``hubkit.fastpath.FastPath``, the one the session set the driver's
    pipelines up with; each actor loads a model in the dtype of the driver's pipeline and applies the fast path that
    pipeline carries, so its images have the keys the driver's store computed. ``actors``: how many (default
    ``HUBKIT_RAY_ACTORS``, else one per GPU of the cluster, else one per CPU).
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
        return cls.remote()

    def _start_actors(self) -> None:
        if self._actors:
            return
        self._actors = [self._new_actor() for _ in range(self.parallelism)]
        # waits until every actor is up, so a cluster that cannot place them says so here instead of hanging
        try:
            self._where = self._ray.get([a.where.remote() for a in self._actors], timeout=ACTOR_START_S)
        except self._ray.exceptions.GetTimeoutError:
            for actor in self._actors:
                self._ray.kill(actor)
            self._actors = []
            need = f"{self.gpus_per_actor} GPU" if self.gpus_per_actor else "1 CPU"
            raise ConfigError(f"--ray {self.address}: {self.parallelism} actors with {need} each did not start within "
                              f"{ACTOR_START_S} s; the cluster has {self._ray.available_resources()} free (another "
                              "run or pytest-xdist worker holding them? use --ray without -n, or set "
                              "HUBKIT_RAY_ACTORS lower)") from None

    def _replace(self, dead):
        """A fresh actor in place of one Ray gave up on."""
        self._ray.kill(dead)  # make sure it is gone for good (it may only have been unreachable)
        fresh = self._new_actor()
        self._actors = [fresh if a is dead else a for a in self._actors]
        return fresh

    # ------------------------------------------------------------------ the backend contract
    def run(self, model, requests, settings, batch_size, generator_device, on_batch) -> None:
        from PIL import Image

        from hubkit.generate import BatchSizer, pipe_dtype

        ray = self._ray
        self._start_actors()
        sizer = batch_size if isinstance(batch_size, BatchSizer) else None
        size = sizer.size if sizer else int(batch_size)
        base = model.details.get("base")
        # absolute: an actor's working directory is not the driver's
        job = {"fingerprint": model.fingerprint, "source": str(Path(model.source).resolve()),
               "base": str(Path(base).resolve()) if base else None,
               "trust_checkpoint": bool(model.details.get("trust_checkpoint", self.trust_checkpoint)),
               "dtype": pipe_dtype(model.pipe), "fastpath": getattr(model.pipe, "_hubkit_fastpath", None)}
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
