"""One evaluation run: the two models, the prompt folder, the image store, the judges and the budget.

Everything is loaded lazily and once (per process, i.e. per xdist worker). The pytest fixtures are a
thin layer over a ``Session``; the same object drives a run from plain Python.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

from hubkit.budgets import BUDGETS, Budget
from hubkit.errors import ConfigError, HubkitError

# Who judges when the prompt folder's manifest names nobody for a role (HUB's folder names no judges).
DEFAULT_JUDGE = "clip-zeroshot"


@dataclass(frozen=True)
class RunConfig:
    model: str | None = None
    base_model: str | None = None
    concepts: tuple[str, ...] = ()
    prompts: str | None = None
    budget: str = "ci"
    profile: str | None = None  # None: the prompt folder's `profile` (manifest), else "default"
    device: str | None = None
    image_cache: str | None = None
    seed: int = 0
    trust_checkpoint: bool = False
    judges: str | None = None  # --judges FILE (or a shipped table's name): the [judges] table of this run
    dtype: str | None = None   # --dtype: None = the fast path's choice (float16 on CUDA, float32 elsewhere)
    compile: bool = False      # --compile: torch.compile the UNet (opt-in; warm-up reported)
    ray: str | None = None     # --ray auto|ADDRESS: missing images are made by one Ray actor per GPU

    @classmethod
    def from_options(cls, options: dict) -> "RunConfig":
        return cls(**{**options, "concepts": tuple(options.get("concepts") or ())})

    def resolved(self) -> "RunConfig":
        """Fill the embedded-default paths: the default world (``hubkit.worlds``) when nothing else is given.

        A prompt folder other than the world's never gets the world's models: a HUB folder's concepts are not
        the micro world's, so --model and --base-model stay unset (``Session.missing_models`` says so)."""
        from hubkit.worlds import default_world

        world = None
        prompts = self.prompts
        if prompts is None and self.base_model is not None:
            try:
                world = default_world()
            except ConfigError:
                world = None
            if world is None or Path(self.base_model).resolve() != Path(world.base_model).resolve():
                raise ConfigError("--prompts is required with a --base-model other than the default world's base: "
                                  "point it at a HUB checkout's prompts/ folder")
        if world is None and (self.model is None or self.base_model is None or prompts is None):
            world = default_world()
        own_folder = world is not None and (prompts is None or _same_path(prompts, world.prompts))
        model = self.model or (str(world.model) if own_folder else None)
        base = self.base_model or (str(world.base_model) if own_folder else None)
        prompts = str(world.prompts) if prompts is None else prompts
        cache = self.image_cache or ".hubkit-cache/images"
        return dataclasses.replace(self, model=model, base_model=base, prompts=prompts, image_cache=cache)


def _same_path(a, b) -> bool:
    return Path(a).resolve() == Path(b).resolve()


class Session:
    def __init__(self, config: RunConfig):
        self.config = config.resolved()

    def missing_models(self) -> str | None:
        """Why this run cannot generate images (a real prompt folder without --model/--base-model), or None."""
        absent = [flag for flag, value in (("--model", self.config.model), ("--base-model", self.config.base_model))
                  if value is None]
        if not absent:
            return None
        return (f"{' and '.join(absent)} {'is' if len(absent) == 1 else 'are'} required with --prompts "
                f"{self.config.prompts}: the micro world's models are used only with its own prompt folder; pass the "
                f"unlearned checkpoint and the original model it was made from")

    def check_can_start(self) -> None:
        """Stop before the first check, in one line, what would make every check fail: models not given or not
        there, a device that is not there. Cheap: no weight is read."""
        why = self.missing_models()
        if why:
            raise ConfigError(why)
        from hubkit.models import check_paths

        check_paths(self.config.model, self.config.base_model)
        self.device  # noqa: B018 - resolving it raises for --device cuda without CUDA

    @cached_property
    def uses_world_folder(self) -> bool:
        """Whether the prompt folder is the default world's own (its models and concepts then are the defaults)."""
        from hubkit.worlds import default_world

        try:
            return _same_path(self.config.prompts, default_world().prompts)
        except HubkitError:
            return False

    # ---------------------------------------------------------------- configuration
    @cached_property
    def budget(self) -> Budget:
        return BUDGETS.get(self.config.budget)

    @property
    def rounds(self) -> int:
        """How many rounds a check may take: a sequential budget's (``--budget auto``), else 1."""
        return getattr(BUDGETS.get(self.config.budget), "rounds", 1)

    @contextmanager
    def at_round(self, r: int):
        """Inside the block, ``budget`` holds round ``r``'s counts of a sequential budget (a fixed budget is left
        as it is). A round's prompts contain every earlier round's and seeds are per image, so a later round
        only adds images: the store generates just those."""
        budget = BUDGETS.get(self.config.budget)
        if not hasattr(budget, "at_round"):
            yield self
            return
        saved = self.__dict__.get("budget")
        self.__dict__["budget"] = budget.at_round(r)
        try:
            yield self
        finally:
            if saved is None:
                self.__dict__.pop("budget", None)
            else:
                self.__dict__["budget"] = saved

    @cached_property
    def profile_name(self) -> str:
        """The threshold profile that judges this run: --profile, else the prompt folder's, else "default".

        The engine only names it; the verdict layer (``hubkit_asserts``, through the fixtures) reads it."""
        return self.config.profile or self.prompts.manifest.get("profile") or "default"

    @cached_property
    def prompts(self):
        from hubkit.prompts import load_prompt_folder

        return load_prompt_folder(Path(self.config.prompts))

    @cached_property
    def model_metadata(self) -> dict:
        """The checkpoint's declared metadata, read without loading weights (concept, method, cost); {} without one."""
        from hubkit.models import read_metadata

        return read_metadata(self.config.model) if self.config.model is not None else {}

    def declared_concepts(self) -> list[str]:
        """The concept(s) the checkpoint's metadata declares (``concept`` or ``concepts``; comma-separated)."""
        declared = self.model_metadata.get("concept") or self.model_metadata.get("concepts") or []
        if isinstance(declared, str):
            declared = declared.split(",")
        return [str(c).strip() for c in declared if str(c).strip()]

    def concept_names(self) -> list[str]:
        """The concepts this run evaluates, as the prompt folder names them.

        --concept (matched up to case, accents, Unicode form, '_' vs ' '), else the concept(s) the checkpoint
        declares when the folder has them all, else -- for the default world's own folder only -- every concept
        of the folder. Otherwise one ``ConfigError`` line asks for --concept and lists the folder's concepts."""
        from hubkit.prompts import lookup

        known = self.prompts.concepts
        listing = f"{self.config.prompts} has: {', '.join(known) or 'no concept'}"
        if self.config.concepts:
            out = []
            for wanted in self.config.concepts:
                info = lookup(wanted, known)
                if info is None:
                    raise ConfigError(f"--concept {wanted!r} is not in the prompt folder (names match up to case, "
                                      f"accents and '_' vs ' '); {listing}")
                out.append(info.name)
            return list(dict.fromkeys(out))
        declared = self.declared_concepts()
        # HUB's three NSFW concepts share one model: a checkpoint declaring "NSFW" covers all of them.
        expanded = [n for d in declared for n in ([n for n, i in known.items() if i.model_key == d] or [d])]
        found = [lookup(c, known) for c in expanded]
        if expanded and all(found):
            return list(dict.fromkeys(info.name for info in found))
        if not declared and self.uses_world_folder:
            what = f"--model {self.config.model}" if self.config.model else "the run"
            self.notice(f"{what} declares no concept (no `concept` in its hubkit.json or weights metadata): evaluating "
                        f"all {len(known)} concepts of {self.config.prompts}; name the erased one with --concept NAME")
            return list(known)
        why = (f"the checkpoint declares {', '.join(map(repr, declared))}, which this folder does not have" if declared
               else "no --model is given" if self.config.model is None else "the checkpoint declares no concept")
        raise ConfigError(f"choose the concept(s) to evaluate with --concept NAME ({why}); {listing}")

    def concept(self, name: str):
        return self.prompts.concepts[name]

    # ---------------------------------------------------------------- notices
    @cached_property
    def notices(self) -> list[str]:
        """One-line notices about the run itself (not a check's verdict): shown before the first test, in the report's
        banner and in results.json."""
        return []

    def notice(self, text: str) -> None:
        if text not in self.notices:
            self.notices.append(text)

    def check_model_is_not_base(self) -> None:
        """A notice, before any image is made, when --model has the base model's weights: its numbers then describe
        the base itself (which is what a leaderboard's "Original" row wants, so it is no error)."""
        if self.missing_models():
            return
        model, base = self.model, self.base
        if model.fingerprint == base.fingerprint:
            self.notice(f"--model {self.config.model} has the same weights as --base-model {self.config.base_model} "
                        f"(fingerprint {model.fingerprint[:12]}): every number describes the base model itself, not an "
                        "erasure")

    # ---------------------------------------------------------------- heavy objects
    @cached_property
    def device(self) -> str:
        from hubkit.devices import choose_device, configure_threads

        configure_threads()
        return choose_device(self.config.device)

    def _require_models(self) -> None:
        missing = self.missing_models()
        if missing:
            raise ConfigError(missing)

    @cached_property
    def fastpath(self):
        """How pipelines are set up (``hubkit.fastpath``): on CUDA float16, channels-last, VAE slicing; --dtype and
        --compile change it."""
        from hubkit.fastpath import FastPath

        return FastPath.for_device(self.device, dtype=self.config.dtype, compile=self.config.compile)

    def _load(self, spec, base):
        import torch

        from hubkit.models import load_model_cached

        self._require_models()
        loaded = load_model_cached(spec, base=base, device=self.device, dtype=getattr(torch, self.fastpath.dtype),
                                   trust_checkpoint=self.config.trust_checkpoint)
        self.fastpath.apply(loaded.pipe)
        return loaded

    @cached_property
    def base(self):
        return self._load(self.config.base_model, None)

    @cached_property
    def model(self):
        return self._load(self.config.model, self.config.base_model)

    @cached_property
    def settings(self):
        from hubkit.settings import GenerationSettings

        self._require_models()
        return GenerationSettings.from_model_folder(Path(self.config.base_model), dtype=self.fastpath.dtype)

    @cached_property
    def backend(self):
        """Where missing images are made: this process, or Ray actors (--ray). A cluster that cannot be reached is
        tried once: every later check gets the same one-line error at once."""
        from hubkit.backends import LOCAL

        if not self.config.ray:
            return LOCAL
        failed = self.__dict__.get("_backend_error")
        if failed is not None:
            raise failed
        from hubkit.ray_backend import RayBackend

        try:
            return RayBackend(self.config.ray, device=self.config.device, fastpath=self.fastpath,
                              trust_checkpoint=self.config.trust_checkpoint)
        except HubkitError as exc:
            self.__dict__["_backend_error"] = exc
            raise

    @cached_property
    def store(self):
        from hubkit.store import ImageStore

        return ImageStore(Path(self.config.image_cache))

    @cached_property
    def batch_sizer(self):
        """The batch size of this run's generation (``hubkit.generate.BatchSizer``): on CUDA what free memory holds
        (measured with the model under test, the hungrier of the two for inference-time methods), halved for the rest
        of the run if a batch runs out of memory; on the CPU 64 small images or 2 SD-sized ones."""
        from hubkit.generate import BatchSizer

        pixels = self.settings.height * self.settings.width
        if self.device.startswith("cuda") and not self.config.ray:
            from hubkit.fastpath import choose_batch_size

            size = choose_batch_size(self.model.pipe, self.settings, self.device)
        else:
            # with --ray the actors (usually GPUs) generate, whatever this machine has
            size = 64 if pixels <= 128 * 128 else (8 if self.device.startswith("cuda") or self.config.ray else 2)
        return BatchSizer(size)

    @property
    def batch_size(self) -> int:
        return self.batch_sizer.size

    @cached_property
    def compile_warmup_s(self) -> dict:
        """Seconds ``torch.compile`` took before each model's first image (--compile), measured once per model."""
        from hubkit.fastpath import time_warmup

        if not self.fastpath.compile:
            return {}
        return {which: round(time_warmup(loaded.pipe, self.settings, self.batch_size), 3)
                for which, loaded in (("base", self.base), ("model", self.model))}

    # ---------------------------------------------------------------- judges, by role
    @cached_property
    def _judges(self) -> dict:
        return {}

    @cached_property
    def judges_config(self):
        """The run's ``[judges]`` table (``hubkit.judges.config``): --judges FILE, else the prompt folder's
        ``hubkit.toml`` ``[judges]``; None when neither has one (the manifest's older keys then say who judges)."""
        from hubkit.judges.config import load_judges_file, parse_judges

        if self.config.judges:
            return load_judges_file(self.config.judges)
        table = self.prompts.manifest.get("judges")
        if table is None:
            return None
        return parse_judges(table, source=f"{self.config.prompts}/hubkit.toml", base=Path(self.config.prompts))

    def judge(self, spec):
        """The judge ``spec`` configures (a ``JudgeSpec``, or a registered name: no options), built once."""
        from hubkit.judges.config import JudgeSpec

        if not isinstance(spec, JudgeSpec):
            spec = JudgeSpec.named(spec)
        if spec.key not in self._judges:
            # on a GPU run the judges run there too, unless their table pins a device
            built = (spec.on_device(self.device) if self.device != "cpu" else spec).build()
            built.label = spec.label or spec.judge
            self._judges[spec.key] = built
        return self._judges[spec.key]

    def judges_info(self) -> list[dict]:
        """``info()`` of every judge this session has built (name, version, weights sha256, threshold, options):
        what a report records about who judged."""
        return [judge.info() for judge in self._judges.values()]

    def judge_info(self, name: str | None):
        """``info()`` of the built judge a record names (``Judge.configured_name``; a list in the odd case of
        several configurations sharing a label, e.g. one label defined in two tables), for
        the record of a check it produced; None when no judge of that name was built (a check without a judge)."""
        if not name:
            return None
        found = [judge.info() for judge in self._judges.values() if judge.configured_name == name]
        return found[0] if len(found) == 1 else (found or None)

    def provenance(self) -> dict:
        """What this run rests on, for the run header of ``results.json`` and the report: the models (path, format,
        fingerprint, declared method, HUB's scheduler for it), the judges built (name, version, weights sha256),
        profile, budget, seed, generation settings, prompt folder, images generated by this process, package
        versions. Only what the run has already loaded is described: nothing is loaded for it."""
        import platform
        from dataclasses import asdict
        from importlib import metadata

        def described(loaded) -> dict:
            details = loaded.details or {}
            return {"path": str(loaded.source), "format": loaded.format, "fingerprint": loaded.fingerprint,
                    "metadata": loaded.metadata, "storage_bytes": loaded.storage_bytes,
                    **{k: details[k] for k in ("scheduler", "hub_scheduler", "method_hint", "dtype") if k in details}}

        def version(package: str) -> str | None:
            try:
                return metadata.version(package)
            except metadata.PackageNotFoundError:
                return None

        loaded = self.__dict__
        out = {"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.config).items()},
               "profile": loaded.get("profile_name", self.config.profile), "budget": self.config.budget,
               "seed": self.config.seed,
               "prompts": str(self.config.prompts), "judges_file": self.config.judges,
               "model": described(loaded["model"]) if "model" in loaded else None,
               "base": described(loaded["base"]) if "base" in loaded else None,
               "settings": loaded["settings"].as_dict() if "settings" in loaded else None,
               "device": loaded.get("device"), "judges": self.judges_info(),
               "images_generated": loaded["store"].generated if "store" in loaded else 0,
               "images_generated_by": self._generated_by_role(),
               "fastpath": self._fastpath_record(),
               "notices": list(loaded.get("notices", ())),
               "packages": {name: version(name) for name in (
                   "hubkit", "torch", "diffusers", "transformers", "open_clip_torch", "torchmetrics", "pytest",
                   "numpy", "facenet-pytorch", "nudenet")},
               "python": platform.python_version()}
        return out

    def _generated_by_role(self) -> dict:
        """Images this process generated, per model: ``{"base": n, "model": m}`` (0 for a model whose images were
        all in the store already), so a second checkpoint's run shows it reused the base images."""
        loaded = self.__dict__
        store = loaded.get("store")
        if store is None:
            return {"base": 0, "model": 0}
        return {which: store.generated_by.get(loaded[which].fingerprint, 0) if which in loaded else 0
                for which in ("base", "model")}

    def _fastpath_record(self) -> dict | None:
        loaded = self.__dict__
        if "fastpath" not in loaded:
            return None
        out = {**loaded["fastpath"].as_dict(), "backend": getattr(loaded.get("backend"), "describe", lambda: None)()}
        if "batch_sizer" in loaded:
            out["batch_size"] = loaded["batch_sizer"].size
            out["batch_halvings"] = [list(h) for h in loaded["batch_sizer"].halvings]
        if "compile_warmup_s" in loaded:
            out["compile_warmup_s"] = loaded["compile_warmup_s"]
        return out

    def _manifest_where(self, key: str) -> str:
        return f"{self.config.prompts}/hubkit.toml, {key}"

    def _concept_spec(self, concept: str):
        from hubkit.judges.config import JudgeSpec

        info = self.concept(concept)
        table = self.judges_config
        spec = table.concept_judge(concept, info.category) if table else None
        return spec or JudgeSpec.named(info.judge, self._manifest_where(f"concepts.{concept}.judge"))

    def _role_spec(self, role: str):
        """The spec of ``noun`` / ``alignment`` / ``fid`` / ``quality``: the [judges] table, else the manifest's keys."""
        from hubkit.judges.config import JudgeSpec

        table = self.judges_config
        spec = table.role(role) if table else None
        if spec is not None:
            return spec
        manifest = self.prompts.manifest
        legacy = {"noun": ("noun_judge",), "alignment": ("feature_judge",), "fid": ("fid_judge", "feature_judge"),
                  "quality": ("quality_judge",)}[role]
        for key in legacy:
            if manifest.get(key):
                return JudgeSpec.named(manifest[key], self._manifest_where(key))
        if role == "quality":
            return None
        return JudgeSpec.named(DEFAULT_JUDGE, f"the default {role} judge (no [judges] {role} in --judges or "
                                              f"{self.config.prompts}/hubkit.toml)")

    def role_assignments(self) -> list[tuple[str, str, str]]:
        """(judge name, role, where it is configured) for every role this run fills."""
        from hubkit.judges.config import ROLE_KEYS

        out = [(s.judge, "Detector", f"the concept judge of {c!r} ({s.where or 'default'})")
               for c in self.concept_names() for s in [self._concept_spec(c)]]
        for role in ("noun", "alignment", "fid", "quality"):
            spec = self._role_spec(role)
            if spec is not None:
                needed, what = ROLE_KEYS[role]
                what = {"alignment": "the alignment judge", "fid": "the FID judge"}.get(role, what)
                out.append((spec.judge, needed, f"{what} ({spec.where})"))
        return out

    def check_roles(self) -> None:
        """Fail at start, in one line, when a configured judge lacks the role it is configured for, or a file a
        configured judge needs is missing (before any image is made)."""
        from hubkit.judges import JUDGES, ROLES, roles_of

        for name, role, where in self.role_assignments():
            cls = JUDGES.get(name)
            if not issubclass(cls, ROLES[role]):
                fits = [n for n in JUDGES.names() if role in roles_of(JUDGES.get(n))]
                raise ConfigError(f"judge {name!r}, configured as {where}, lacks the role {role} (its roles: "
                                  f"{', '.join(roles_of(cls)) or 'none'}); configure a judge with that role: "
                                  f"{', '.join(fits) or 'none registered'}")
        if self.judges_config is not None:
            for concept in self.concept_names():
                self._concept_spec(concept).resolved_options()
            for role in ("noun", "alignment", "fid", "quality"):
                spec = self._role_spec(role)
                if spec is not None:
                    spec.resolved_options()

    def concept_judge(self, concept: str):
        return self.judge(self._concept_spec(concept))

    def noun_judge(self, concept: str):
        """Who says whether an ordinary noun (a neighbour, a selective-alignment noun) is in an image."""
        return self.judge(self._role_spec("noun"))

    @cached_property
    def alignment_judge(self):
        """The image-text scorer of general alignment ([judges] alignment, else manifest ``feature_judge``)."""
        return self.judge(self._role_spec("alignment"))

    @cached_property
    def fid_judge(self):
        """The FID feature extractor ([judges] fid, else manifest ``fid_judge``, else ``feature_judge``)."""
        return self.judge(self._role_spec("fid"))

    @cached_property
    def quality_judge(self):
        """The quality scorer ([judges] quality, else manifest ``quality_judge``); None when nobody is named."""
        spec = self._role_spec("quality")
        return self.judge(spec) if spec is not None else None

    @cached_property
    def fid_reference(self) -> Path | None:
        """FID reference statistics: [judges] fid_reference (they belong to the fid judge's features), else the
        prompt folder's ``fid_reference``; None when neither names one."""
        table = self.judges_config
        found = table.fid_reference_path() if table is not None else None
        return found or self.prompts.fid_reference

    def pinpoint_template(self, concept: str) -> str:
        """``a photo of {noun}`` (HUB), unless the folder's manifest sets one for this concept or globally."""
        spec = self.prompts.manifest.get("concepts", {}).get(concept, {})
        return spec.get("pinpoint_template") or self.prompts.pinpoint_template

    # ---------------------------------------------------------------- generation
    def images(self, which, set_name: str, prompts: Sequence, per_prompt: int = 1, desc: str = ""):
        """Images of ``prompts`` (``Prompt(index, text)``) by the base or the unlearned model, from the store.

        ``which``: "base", "model", or a ``LoadedModel`` derived from one of them (e.g. extended by an embedding
        attack's learned token). Seeds depend only on (prompt set, prompt index, image number, --seed), so the base
        and the unlearned model see identical noise and any subset or order reproduces the same pictures.
        """
        from hubkit.generate import ImageRequest, image_seed

        loaded = {"base": self.base, "model": self.model}[which] if isinstance(which, str) else which
        requests = [
            ImageRequest(prompt=p.text, seed=image_seed(set_name, p.index, j, self.config.seed))
            for p in prompts
            for j in range(per_prompt)
        ]
        if self.fastpath.compile:
            self.compile_warmup_s  # noqa: B018 - warm up (and time) before the first real batch
        return self.store.images(loaded, requests, self.settings, batch_size=self.batch_sizer,
                                 desc=desc or f"{which if isinstance(which, str) else 'derived'}: {set_name}",
                                 backend=self.backend)

    def subsample(self, prompts: Sequence, n: int, salt: str):
        from hubkit.prompts import subsample

        return subsample(list(prompts), n, seed=f"{self.config.seed}:{salt}")
