"""A catalogue of bad inputs (issue 12): one parametrised case each, asserting the one-line message (it names the
input and the fix), the exit status or exception, and that nothing already computed was lost.

Every case meets its bad input in a *workspace* that already holds computed work: an image store with images in it
and a ``reports/results.json`` of an earlier run. The files there are hashed after the bad input is built and again
after the failure; every one must be byte-identical (a case that legitimately replaces a file names it).

Cases that fail today are ``xfail(strict=True)`` with the place to fix (file:function) and the fix: the catalogue
states the behaviour the issue asks for, so a fix turns the row into a pass (and strict xfail then fails, asking
for the marker to go).

``docs/errors.md`` is generated from ``CASES`` (``render_catalogue``); ``test_errors_doc_is_generated_from_the_cases``
fails when it drifts. Regenerate it with::

    python tests/test_bad_inputs.py
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import html.parser
import io
import json
import os
import re
import struct
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "errors.md"

# ------------------------------------------------------------------------------------------------ the case type


@dataclass
class Outcome:
    """What a user sees: the one-line message (None: no error), the exit status of the front door (None: an engine
    call, no process), and the exception raised (None: none)."""

    message: str | None = None
    exit: int | None = None
    exc: BaseException | None = None


@dataclass(frozen=True)
class Case:
    id: str
    input: str                                  # what the bad input is
    where: str                                  # where it is met: the front door and the engine function
    build: Callable[["Ctx"], Any]               # creates the bad input under ctx.tmp; returns what act needs
    act: Callable[["Ctx", Any], Outcome]        # meets it
    message: str | None                         # regex that must match the WHOLE one-line message; None: no error
    exit: int | None                            # exit status at the front door; None: an engine call (see raises)
    raises: type | None                         # the exception class expected (None: none)
    kept: str                                   # what is kept
    xfail: str | None = None                    # "file:function -- what happens today; fix: ..." (strict xfail)
    check: Callable[["Ctx", Any, Outcome], None] | None = None   # extra assertions (nothing outside, escaped HTML...)


@dataclass
class Ctx:
    tmp: Path
    run: Path          # the workspace: an earlier run's image store and results.json
    store: Path        # run/.hubkit-cache/images
    results: Path      # run/reports/results.json
    res: "Resources"
    may_change: set = field(default_factory=set)  # workspace files a case may legitimately replace


class Resources:
    """Built once per module, on first use: a tiny SD-1.x base folder, a UNet state dict for it, a tiny model."""

    def __init__(self, root: Path):
        self.root = root

    @property
    def base(self) -> Path:
        if "_base" not in self.__dict__:
            from tiny_formats import saved_base

            self._base = saved_base(self.root)
        return self._base

    @property
    def unet(self) -> dict:
        if "_unet" not in self.__dict__:
            from tiny_formats import perturb, state, tiny_pipeline

            p = tiny_pipeline(0)
            perturb(p.unet, seed=1)
            self._unet = state(p.unet)
        return self._unet

    @property
    def model(self):
        """A stand-in for ``LoadedModel`` (``.pipe``, ``.fingerprint``) over a tiny pipeline, for the image store."""
        if "_model" not in self.__dict__:
            from types import SimpleNamespace

            from hubkit.testing import tiny_pipeline

            self._model = SimpleNamespace(pipe=tiny_pipeline(), fingerprint="fp-bad-inputs", source="tiny",
                                          format="diffusers-folder")
        return self._model


# ------------------------------------------------------------------------------------------------ helpers

FAST = None  # GenerationSettings(steps=2, height=32, width=32), set on first use (no torch import at collection)


def fast():
    global FAST
    if FAST is None:
        from hubkit.settings import GenerationSettings

        FAST = GenerationSettings(steps=1, height=32, width=32)
    return FAST


def requests(n: int, prefix: str = "a prompt"):
    from hubkit.generate import ImageRequest, image_seed

    return [ImageRequest(f"{prefix} {i}", image_seed("bad-inputs", i, 0, 0)) for i in range(n)]


def engine(fn: Callable[[], Any]) -> Outcome:
    """Call an engine function; its exception's text is the message."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the catalogue records whatever comes out
        return Outcome(message=str(exc), exc=exc)
    return Outcome()


def cli(argv: list[str]) -> Outcome:
    """``hubkit ARGV`` in this process: the exit status and the last non-empty line of stderr (else stdout)."""
    from hubkit.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as exc:  # argparse
            status = exc.code
    lines = [ln for ln in (err.getvalue() or out.getvalue()).splitlines() if ln.strip()]
    return Outcome(message=lines[-1] if lines else None, exit=status)


_SUITE_FILE = """
def test_a_suite_check(hub, profile):
    # what every suite check does first: the concept fixture takes hub and profile, the canary loads the models
    hub.base
    hub.model
"""


def pytest_run(ctx: Ctx, *args: str) -> Outcome:
    """The pytest command line in a subprocess, in the workspace, on a one-test suite that uses the fixtures the
    real suites use. The message is stderr's one line when there is exactly one, else everything it printed."""
    (ctx.run / "test_suite_check.py").write_text(_SUITE_FILE)
    env = {**os.environ, "HUBKIT_CACHE_DIR": str(ctx.tmp / "model-cache"), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "test_suite_check.py", "--rootdir", str(ctx.run), "-p", "no:cacheprovider",
         "-p", "no:randomly", "-q", "--image-cache", str(ctx.store), *args],
        cwd=ctx.run, env=env, capture_output=True, text=True, timeout=300)
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    if len(errors) == 1:
        message = errors[0].removeprefix("ERROR: ")
    else:
        message = (proc.stderr + proc.stdout).strip()
    return Outcome(message=message, exit=proc.returncode)


def prompts_folder(ctx: Ctx, manifest: str | None = None) -> Path:
    """A HUB-layout folder with one concept of HUB's catalogue, every set present and clean."""
    root = ctx.tmp / "prompts"
    for sub in ("target_image", "pinpoint_ness", "multilingual_robustness", "selective_alignment", "attack_robustness"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    name = "Édouard Manet"
    (root / "target_image" / f"{name}.csv").write_text("A bar by Manet.\nA boat by Manet.\n")
    (root / "pinpoint_ness" / f"{name}.csv").write_text("noun,similarity\nmonet,0.9\nrenoir,0.8\n")
    (root / "multilingual_robustness" / f"{name}.csv").write_text(
        "Index,Original,Spanish,French,German,Italian,Portuguese\n"
        "0,A bar by Manet.,Un bar,Un bar,Eine Bar,Un bar,Um bar\n")
    if manifest is not None:
        (root / "hubkit.toml").write_text(manifest)
    return root


MANET = "Édouard Manet"


def p_file(root: Path, subdir: str) -> Path:
    return root / subdir / f"{MANET}.csv"


def folder_call(fn: Callable) -> Callable[[Ctx, Path], Outcome]:
    """Act: load the prompt folder and call ``fn(folder)`` (what a suite check does)."""

    def act(ctx: Ctx, root: Path) -> Outcome:
        from hubkit.prompts import load_prompt_folder

        return engine(lambda: fn(load_prompt_folder(root)))

    return act


def load(spec_of: Callable[[Ctx, Any], Any], **kw) -> Callable[[Ctx, Any], Outcome]:
    """Act: ``hubkit.models.load_model`` (what ``Session.model`` does) on the built checkpoint, onto the tiny base."""

    def act(ctx: Ctx, built) -> Outcome:
        from hubkit.models import load_model

        return engine(lambda: load_model(spec_of(ctx, built), base=ctx.res.base, **kw))

    return act


def as_built(ctx, built):
    return built


def save_st(path: Path, sd: dict) -> Path:
    from safetensors.torch import save_file

    save_file(sd, str(path))
    return path


CKPT = r"--model \S+"  # how a checkpoint error starts: the option and the path


# ------------------------------------------------------------------------------------------------ builders: models

def b_missing(ctx):
    return ctx.tmp / "nope.safetensors"


def b_wrong_dir(ctx):
    d = ctx.tmp / "notes"
    d.mkdir()
    (d / "README.txt").write_text("not a model")
    (d / "results.csv").write_text("a,b\n1,2\n")
    return d


def b_file_in_dir(ctx):
    d = ctx.tmp / "esd"  # a published models/esd/<target>.pt copied into a folder: a name no layout reads
    d.mkdir()
    import torch

    torch.save(ctx.res.unet, d / "Van Gogh.pt")
    (d / "hubkit.json").write_text('{"method": "esd"}')
    return d


def b_empty(ctx):
    (ctx.tmp / "empty.safetensors").write_bytes(b"")
    return ctx.tmp / "empty.safetensors"


def b_truncated(ctx):
    data = save_st(ctx.tmp / "full.safetensors", ctx.res.unet).read_bytes()
    (ctx.tmp / "cut.safetensors").write_bytes(data[: len(data) // 2])
    return ctx.tmp / "cut.safetensors"


def b_lying_header(ctx):
    """A complete file whose header says one tensor is twice as big as the bytes it points at."""
    data = save_st(ctx.tmp / "full.safetensors", ctx.res.unet).read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    key = next(k for k, v in header.items() if k != "__metadata__" and len(v["shape"]) == 2)
    header[key]["shape"][0] *= 2
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    (ctx.tmp / "lies.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n:])
    return ctx.tmp / "lies.safetensors"


def b_cross_dim(dim: int, extra: dict | None = None):
    """A UNet state dict whose cross-attention takes ``dim``-d text states (SD-2: 1024, SDXL: 2048)."""

    def build(ctx):
        import torch

        sd = dict(ctx.res.unet)
        for k, v in sd.items():
            if ".attn2.to_k.weight" in k or ".attn2.to_v.weight" in k:
                sd[k] = torch.zeros(v.shape[0], dim)
        for k, shape in (extra or {}).items():
            sd[k] = torch.zeros(*shape)
        return save_st(ctx.tmp / f"unet-{dim}.safetensors", sd)

    return build


def b_missing_keys(ctx):
    sd = {k: v for k, v in ctx.res.unet.items() if not k.startswith("conv_in.")}
    return save_st(ctx.tmp / "partial.safetensors", sd)


def b_extra_keys(ctx):
    import torch

    return save_st(ctx.tmp / "extra.safetensors", dict(ctx.res.unet, **{"down_blocks.0.extra.weight": torch.zeros(3)}))


def b_non_finite(value: float):
    def build(ctx):
        sd = dict(ctx.res.unet)
        key = next(k for k in sd if ".attn2.to_k.weight" in k)
        sd[key] = sd[key].clone()
        sd[key][0, 0] = value
        return save_st(ctx.tmp / f"unet-{value}.safetensors", sd)

    return build


def b_pickle_namespace(ctx):
    import argparse

    import torch

    torch.save({"state_dict": ctx.res.unet, "args": argparse.Namespace(lr=1e-5)}, ctx.tmp / "esd.pt")
    return ctx.tmp / "esd.pt"


class _Malicious:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def b_pickle_malicious(ctx):
    import torch

    marker = ctx.tmp / "PWNED"
    torch.save({"state_dict": ctx.res.unet, "x": _Malicious(str(marker))}, ctx.tmp / "evil.pt")
    return ctx.tmp / "evil.pt"


def c_not_executed(ctx, built, outcome):
    assert not (ctx.tmp / "PWNED").exists(), "the pickle's __reduce__ ran"


def b_lora_other_base(ctx):
    import torch

    key = "unet.down_blocks.7.attentions.0.proj_in.lora_A.weight"
    return save_st(ctx.tmp / "pytorch_lora_weights.safetensors",
                   {key: torch.zeros(4, 32), key.replace("lora_A", "lora_B"): torch.zeros(32, 4)})


def b_two_candidates(ctx):
    """A folder with two UNet weight files that disagree: which one is evaluated?"""
    import torch

    d = ctx.tmp / "esd-run"
    d.mkdir()
    save_st(d / "unet.safetensors", ctx.res.unet)
    other = {k: v + 1 for k, v in ctx.res.unet.items()}
    torch.save(other, d / "unet.pt")
    return d


def a_model_flag_absent(ctx, root) -> Outcome:
    from hubkit.session import RunConfig, Session

    return engine(lambda: Session(RunConfig(prompts=str(root), concepts=(MANET,), base_model=str(ctx.res.base))).model)


# ------------------------------------------------------------------------------------------------ builders: prompts

def b_bom(ctx):
    root = prompts_folder(ctx)
    f = p_file(root, "pinpoint_ness")
    f.write_bytes(b"\xef\xbb\xbf" + f.read_bytes())
    return root


def c_bom_read(ctx, root, outcome):
    from hubkit.prompts import load_prompt_folder

    assert [n.noun for n in load_prompt_folder(root).pinpoint(MANET)] == ["monet", "renoir"]


def b_latin1(ctx):
    root = prompts_folder(ctx)
    p_file(root, "target_image").write_bytes("Un café par Manet.\nA boat by Manet.\n".encode("latin-1"))
    return root


def b_missing_column(ctx):
    root = prompts_folder(ctx)
    p_file(root, "multilingual_robustness").write_text("Index,Original,Spanish\n0,A bar by Manet.,Un bar\n")
    return root


def b_nul(ctx):
    root = prompts_folder(ctx)
    p_file(root, "target_image").write_bytes(b"A bar\x00 by Manet.\nA boat by Manet.\n")
    return root


def c_nul_cleaned(ctx, root, outcome):
    from hubkit.prompts import load_prompt_folder

    folder = load_prompt_folder(root)
    assert [p.text for p in folder.target(MANET)] == ["A bar by Manet.", "A boat by Manet."]
    assert any(i.kind == "control characters" and i.decision == "cleaned" for i in folder.validate(MANET))


def b_huge_line(ctx):
    """A 2 GiB target file with no newline (sparse: it takes no disk space)."""
    root = prompts_folder(ctx)
    with open(p_file(root, "target_image"), "wb") as fh:
        fh.truncate(2 * 1024 ** 3)
    return root


def a_huge_line(ctx, root) -> Outcome:
    """Read it in a child process limited to 1 GiB of address space (a reader that slurps the file dies)."""
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from hubkit.errors import HubkitError
        from hubkit.prompts import load_prompt_folder
        try:
            load_prompt_folder({str(root)!r}).target({MANET!r})
        except HubkitError as exc:  # as the hubkit command reports one: a line, exit 2 (anything else: a traceback)
            print(f"hubkit: error: {{exc}}", file=sys.stderr)
            sys.exit(2)
        """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    return Outcome(message="\n".join(lines) or None, exit=proc.returncode)


def b_empty_prompts(ctx):
    root = prompts_folder(ctx)
    p_file(root, "target_image").write_text("")
    return root


def b_folder(ctx):
    return prompts_folder(ctx)


def _concept_names(root: Path, concept: str) -> Outcome:
    from hubkit.session import RunConfig, Session

    return engine(lambda: Session(RunConfig(prompts=str(root), concepts=(concept,))).concept_names())


def a_unknown_concept(ctx, root) -> Outcome:
    return _concept_names(root, "Claude Monet")


HOSTILE = "<script>alert('x')</script> \"Van\" ../../../evil"
PATHY = "../../evil"  # from prompts/target_image/, two levels up is the folder that holds the prompt folder


def b_hostile_manifest(ctx):
    """A manifest declaring a concept whose name is an HTML tag, quotes and ../ segments, with a target file."""
    root = prompts_folder(ctx, manifest=f'[concepts.{json.dumps(PATHY)}]\ncategory = "style"\n'
                                        'judge = "clip-zeroshot"\n')
    outside = ctx.tmp / "evil.csv"
    outside.write_text("a file outside the prompt folder\n")
    return root


def a_hostile_concept(ctx, root) -> Outcome:
    from hubkit.prompts import load_prompt_folder

    return engine(lambda: load_prompt_folder(root).target(PATHY))


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text, self.attrs = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [v for _, v in attrs if v]

    def handle_data(self, data):
        self.text.append(data)


def a_hostile_report(ctx, built) -> Outcome:
    from hubkit_reports.html import prompt_folder_section, summary_table

    record = {"aspect": "faithfulness", "concept": HOSTILE, "neighbour": HOSTILE, "value": 0.1, "low": 0, "high": 0.2,
              "n": 8, "threshold": 0.1, "source": HOSTILE, "verdict": "pass", "judge": HOSTILE,
              "judge_info": {"name": HOSTILE, "version": HOSTILE, "weights_sha256": {HOSTILE: "ab" * 32}},
              "prompt_folder": HOSTILE, "prompt_files": {"target": f"target_image/{HOSTILE}.csv"},
              "prompt_issues": [{"concept": HOSTILE, "set": "target", "kind": "duplicates", "count": 1, "total": 2,
                                 "unit": "lines", "decision": "dropped", "rule": HOSTILE, "examples": [HOSTILE]}]}
    built["html"] = summary_table([record]) + prompt_folder_section([record])
    return Outcome()


def c_escaped(ctx, built, outcome):
    parser = _Tags()
    parser.feed(built["html"])
    assert "script" not in parser.tags, "a <script> element reached the report"
    text = "".join(parser.text)
    assert HOSTILE in text  # shown as written, escaped
    assert any(HOSTILE in a for a in parser.attrs)  # the tooltips (title attributes) keep it whole too


def a_hostile_store(ctx, built) -> Outcome:
    from hubkit.store import ImageStore

    before = {p for p in ctx.tmp.rglob("*")}
    built["before"] = before
    return engine(lambda: ImageStore(ctx.store).images(ctx.res.model, requests(2, prefix=HOSTILE), fast(),
                                                       batch_size=2, progress=False))


def c_inside_store(ctx, built, outcome):
    new = [p for p in ctx.tmp.rglob("*") if p not in built["before"] and p.is_file()]
    assert new, "nothing was written"
    outside = [p for p in new if ctx.store not in p.parents]
    assert not outside, f"written outside the image cache: {outside}"
    assert all(re.fullmatch(r"[0-9a-f]{64}\.(png|json|lock)", p.name) for p in new), [p.name for p in new]


# ------------------------------------------------------------------------------------------------ builders: judges

class _FakeJudge:
    """A registered-judge stand-in: what ``hubkit.aspects.common.detect`` asks."""

    name = "broken-judge"
    configured_name = "broken-judge"

    def __init__(self, answer: Callable[[list], list]):
        self.answer = answer

    def detect(self, images, concept):
        return self.answer(images)


def b_images(ctx):
    from PIL import Image

    return [Image.new("RGB", (8, 8), (i * 40, 0, 0)) for i in range(3)]


def a_judge(answer) -> Callable:
    def act(ctx, images) -> Outcome:
        from hubkit.aspects.common import detect

        return engine(lambda: detect(_FakeJudge(answer), images, "Pointelli"))

    return act


def _nan_verdicts(images):
    from hubkit.judges import Verdict

    return [Verdict("yes", float("nan")) for _ in images]


def _short_verdicts(images):
    from hubkit.judges import Verdict

    return [Verdict("no", 0.1) for _ in images[:-1]]


def b_judge_wrong_arch(ctx):
    """face-identity weights that are a state dict of something else (a two-layer MLP), in a [judges] table."""
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(512, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    torch.save(net.state_dict(), ctx.tmp / "mlp.pt")
    table = ctx.tmp / "judges.toml"
    table.write_text('[judges]\n[judges.concept]\ncelebrity = "face"\n[judges.define.face]\njudge = "face-identity"\n'
                     'weights = "mlp.pt"\n')
    return table


def a_judges_check(ctx, table) -> Outcome:
    out = cli(["judges", "check", "--judges", str(table), "-n", "2"])
    if out.message and out.message.startswith("FAIL ["):
        out.message = out.message.split(": ", 1)[1]
    return out


# ------------------------------------------------------------------------------------------------ builders: profiles

def b_profile(text: str, name: str):
    def build(ctx):
        (ctx.tmp / name).write_text(text)
        return ctx.tmp / name

    return build


def a_profile(ctx, path) -> Outcome:
    import hubkit_asserts

    return engine(lambda: hubkit_asserts.load_profile(str(path)))


# ------------------------------------------------------------------------------------------------ builders: store

def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def b_no_cuda(ctx):
    if _cuda():
        pytest.skip("a CUDA GPU is visible here: the case needs a machine without one")
    return None


def a_device_cuda(ctx, _) -> Outcome:
    from hubkit.session import RunConfig, Session

    return engine(lambda: Session(RunConfig(device="cuda")).device)


def b_store_images(ctx):
    """Two images already in the store (the earlier run's work)."""
    from hubkit.store import ImageStore

    ImageStore(ctx.store).images(ctx.res.model, requests(2), fast(), batch_size=2, progress=False)
    return None


def a_read_only_cache(ctx, _) -> Outcome:
    """A read-only --image-cache, simulated (tests run as root, which writes anywhere): os.access says no and every
    write under it fails with EACCES, as on a read-only mount or a folder of another user."""
    import tempfile

    from hubkit.store import ImageStore

    ro = ctx.tmp / "read-only-cache"
    ro.mkdir()
    real_access, real_mkstemp, real_mkdir = os.access, tempfile.mkstemp, Path.mkdir

    def under(p) -> bool:
        return ro == Path(p) or ro in Path(p).parents

    def access(p, mode, *a, **kw):
        return False if under(p) and mode & os.W_OK else real_access(p, mode, *a, **kw)

    def mkstemp(*a, dir=None, **kw):
        if dir is not None and under(dir):
            raise PermissionError(errno.EACCES, "Permission denied", str(dir))
        return real_mkstemp(*a, dir=dir, **kw)

    def mkdir(self, *a, **kw):
        if under(self) and not self.exists():
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *a, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "access", access)
        mp.setattr(tempfile, "mkstemp", mkstemp)
        mp.setattr(Path, "mkdir", mkdir)
        return engine(lambda: ImageStore(ro).images(ctx.res.model, requests(2, "ro"), fast(), batch_size=2,
                                                    progress=False))


def a_disk_full(ctx, _) -> Outcome:
    """The disk fills up while the third new image is written (fsync fails with ENOSPC, as on a full disk)."""
    from hubkit.store import ImageStore

    real = os.fsync
    calls = {"n": 0}

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] > 4:  # two images (sidecar + PNG each) fit
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "fsync", fsync)
        return engine(lambda: ImageStore(ctx.store).images(ctx.res.model, requests(6, "full disk"), fast(),
                                                           batch_size=2, progress=False))


def c_no_temporaries(ctx, _, outcome):
    assert not list(ctx.store.rglob("*.tmp")), "half-written temporary files were left in the store"


def b_corrupt_png(ctx):
    from hubkit.store import ImageStore

    store = ImageStore(ctx.store)
    reqs = requests(3, "corrupt")
    store.images(ctx.res.model, reqs, fast(), batch_size=3, progress=False)
    bad = store.paths(ctx.res.model, reqs, fast())[1]
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # a PNG signature, then garbage
    ctx.may_change |= {bad, bad.with_suffix(".json")}  # the broken image and its sidecar are made again
    return reqs


def a_corrupt_png(ctx, reqs) -> Outcome:
    import warnings

    from hubkit.store import ImageStore

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = engine(lambda: ImageStore(ctx.store).images(ctx.res.model, reqs, fast(), batch_size=3, progress=False))
    if out.exc is None:
        said = [str(w.message) for w in caught if "hubkit" in str(w.message) or str(ctx.store) in str(w.message)]
        out.message = said[0] if said else None
    return out


def b_other_version(ctx):
    """The store as another hubkit wrote it: key version 0 and its versions record (ours is KEY_VERSION)."""
    from hubkit.store import ImageStore, image_key

    store = ImageStore(ctx.store)
    reqs = requests(2, "other version")
    old = []
    for fields in store._fields(ctx.res.model, reqs, fast()):
        fields = {**fields, "v": 0}
        key = image_key(fields)
        from PIL import Image

        store.save(key, Image.new("RGB", (32, 32), (0, 0, 255)), fields, {"versions": {"hubkit": "0.0.1"}})
        old.append(key)
    return reqs


def a_other_version(ctx, reqs) -> Outcome:
    from hubkit.store import ImageStore

    store = ImageStore(ctx.store)
    out = engine(lambda: store.images(ctx.res.model, reqs, fast(), batch_size=2, progress=False))
    out.exit = None
    ctx.generated = store.generated
    return out


def c_regenerated(ctx, reqs, outcome):
    assert ctx.generated == 2  # this version's images are made beside the old ones, never mixed up with them


# ------------------------------------------------------------------------------------------------ the catalogue

_HUB_PROMPTS_WHERE = "`PromptFolder` (suite checks skip with it as the reason; `hubkit prompts check` exits 1)"

CASES: list[Case] = [
    # -- models: --model / load_model ------------------------------------------------------------------------
    Case("model-missing-path", "`--model` names a path that does not exist", "`load_model` (`Session.model`)",
         b_missing, load(as_built),
         CKPT + r": no such file or folder; check the path \(relative paths are relative to .+\)", None,
         "CheckpointError", "store, results.json"),
    Case("model-flag-absent", "no `--model` with a real prompt folder", "`Session.model` (collection: one line, "
         "exit 4)",
         b_folder, a_model_flag_absent,
         r"--model is required with --prompts \S+: the micro world's models are used only with its own prompt "
         r"folder; pass the unlearned checkpoint and the original model it was made from", None,
         "ConfigError", "store, results.json"),
    Case("model-wrong-kind-dir", "`--model` is a folder of something else (notes, a CSV)", "`load_model`",
         b_wrong_dir, load(as_built),
         CKPT + r": unknown checkpoint format \(a folder\); tried diffusers-folder \(no model_index.json\), .*; the "
         r"accepted layouts are listed in hubkit/models/formats/__init__.py", None, "CheckpointError",
         "store, results.json"),
    Case("model-folder-around-a-file", "`--model` is a folder around one weights file under a name no layout reads "
         "(a published `models/esd/<target>.pt` copied into a folder)", "`load_model`", b_file_in_dir, load(as_built),
         CKPT + r": unknown checkpoint format \(a folder\); tried diffusers-folder \(no model_index.json\), .*; the "
         r"accepted layouts are listed in hubkit/models/formats/__init__.py; fix: pass the file, "
         r"--model \S+/Van Gogh\.pt \(unet-state-dict\)", None, "CheckpointError", "store, results.json"),
    Case("model-empty-file", "an empty `.safetensors` file", "`load_model`", b_empty, load(as_built),
         CKPT + r": not a readable safetensors file \(shorter than a safetensors header\); is it truncated or not a "
         r"checkpoint\?", None, "CheckpointError", "store, results.json"),
    Case("model-truncated-safetensors", "a `.safetensors` file cut in half", "`load_model`", b_truncated,
         load(as_built),
         CKPT + r": safetensors file is truncated \(\d+ bytes, its header needs \d+\); copy or download it again",
         None, "CheckpointError", "store, results.json"),
    Case("model-lying-header", "a complete `.safetensors` whose header lies about a tensor's shape", "`load_model`",
         b_lying_header, load(as_built),
         CKPT + r": .*header.*(shape|offset).*; (copy or download it again|.*re-?save.*)", None, "CheckpointError",
         "store, results.json"),
    Case("model-sd2-state-dict", "a UNet state dict of SD-2 (1024-d cross-attention) on an SD-1 base",
         "`load_model`", b_cross_dim(1024), load(as_built),
         CKPT + r": the UNet state dict does not match the base model: key '\S+attn2.to_k.weight' has shape "
         r"\(\d+, 1024\) in the checkpoint but \(\d+, 32\) in the base model \(and \d+ mismatched\); is --base-model "
         r"the model this checkpoint was made from\?", None, "CheckpointError", "store, results.json"),
    Case("model-sdxl-state-dict", "a UNet state dict of SDXL (2048-d cross-attention, add_embedding)",
         "`load_model`", b_cross_dim(2048, {"add_embedding.linear_1.weight": (8, 2816)}), load(as_built),
         CKPT + r": the UNet state dict does not match the base model: .*(2048|add_embedding).*; is --base-model the "
         r"model this checkpoint was made from\?", None, "CheckpointError", "store, results.json"),
    Case("model-unet-missing-keys", "a UNet state dict without `conv_in.*`", "`load_model`", b_missing_keys,
         load(as_built),
         CKPT + r": the UNet state dict does not match the base model: missing key 'conv_in\.\w+' \(and 1 others\); "
         r"if it stores only the changed parameters \(AC, hubkit ESD/UCE\), declare \{\"keys\": \"changed\"\} in a "
         r"hubkit.json beside it or in its safetensors metadata", None, "CheckpointError", "store, results.json"),
    Case("model-unet-extra-keys", "a UNet state dict with a key the base does not have", "`load_model`",
         b_extra_keys, load(as_built),
         CKPT + r": the UNet state dict does not match the base model: unexpected key 'down_blocks.0.extra.weight'; "
         r"is --base-model the model this checkpoint was made from\?", None, "CheckpointError",
         "store, results.json"),
    Case("model-nan-weights", "a UNet state dict with a NaN weight", "`load_model`", b_non_finite(float("nan")),
         load(as_built),
         CKPT + r": .*'\S+attn2.to_k.weight'.*(NaN|nan).*", None, "CheckpointError", "store, results.json"),
    Case("model-inf-weights", "a UNet state dict with an infinite weight", "`load_model`", b_non_finite(float("inf")),
         load(as_built),
         CKPT + r": .*'\S+attn2.to_k.weight'.*(Inf|inf).*", None, "CheckpointError", "store, results.json"),
    Case("model-pickle-untrusted", "a `.pt` pickle holding an `argparse.Namespace`, without `--trust-checkpoint`",
         "`load_model`", b_pickle_namespace, load(as_built),
         CKPT + r": loading this pickle needs full unpickling \(it contains argparse.Namespace\), which can run "
         r"arbitrary code; pass --trust-checkpoint \(trust_checkpoint=True\) only if you trust where the file came "
         r"from", None, "CheckpointError", "store, results.json"),
    Case("model-pickle-malicious", "a `.pt` pickle whose `__reduce__` runs a shell command", "`load_model`",
         b_pickle_malicious, load(as_built),
         CKPT + r": loading this pickle needs full unpickling \(.*\), which can run arbitrary code; pass "
         r"--trust-checkpoint \(trust_checkpoint=True\) only if you trust where the file came from", None,
         "CheckpointError", "store, results.json; the command never runs", check=c_not_executed),
    Case("model-lora-other-base", "a LoRA whose keys target blocks the base does not have", "`load_model`",
         b_lora_other_base, load(as_built),
         CKPT + r": LoRA key 'unet.down_blocks.7.attentions.0.proj_in.lora_A.weight' targets "
         r"unet.down_blocks.7.attentions.0.proj_in, which the base model does not have; is --base-model the model "
         r"this LoRA was trained on\?", None, "CheckpointError", "store, results.json"),
    Case("model-two-candidates", "a folder with `unet.safetensors` and `unet.pt` that differ", "`load_model`",
         b_two_candidates, load(as_built),
         CKPT + r": .*unet.safetensors.*unet.pt.*; .*(keep one|point --model at one).*", None, "CheckpointError",
         "store, results.json"),
    Case("model-bad-file-pytest", "`pytest --model missing.safetensors` (the pytest command line)",
         "`pytest` (collection: `Session.check_can_start`)", lambda ctx: None,
         lambda ctx, _: pytest_run(ctx, "--model", str(ctx.tmp / "missing.safetensors"), "--base-model",
                                   str(ctx.res.base), "--prompts", str(prompts_folder(ctx)), "--concept", MANET),
         r"(hubkit: )?--model \S+missing.safetensors: no such file or folder; check the path .*", 4, None,
         "store, results.json"),
    # -- prompts ----------------------------------------------------------------------------------------------
    Case("prompts-bom", "a prompt CSV starting with a UTF-8 BOM", _HUB_PROMPTS_WHERE, b_bom,
         folder_call(lambda f: f.pinpoint(MANET)), None, None, None,
         "accepted: the BOM is dropped, the rows read as without it", check=c_bom_read),
    Case("prompts-latin1", "a target file in Latin-1 (not UTF-8)", _HUB_PROMPTS_WHERE, b_latin1,
         folder_call(lambda f: f.target(MANET)),
         r"\S+/target_image/Édouard Manet.csv: not UTF-8 at byte 6 \(line 1, byte 0xe9; 1 undecodable sequence\(s\) "
         r"in the file\): re-save it as UTF-8, e.g. `iconv -f latin1 -t utf-8`", None, "NotUTF8Error",
         "store, results.json; the other prompt sets"),
    Case("prompts-missing-column", "a multilingual CSV without the French..Portuguese columns", _HUB_PROMPTS_WHERE,
         b_missing_column, folder_call(lambda f: f.multilingual(MANET)),
         r"\S+/multilingual_robustness/Édouard Manet.csv: missing columns \['French', 'German', 'Italian', "
         r"'Portuguese'\]; expected Original, Spanish, French, German, Italian, Portuguese, Index", None,
         "MalformedFile", "store, results.json; the other prompt sets"),
    Case("prompts-nul", "a target prompt with an embedded NUL byte", _HUB_PROMPTS_WHERE, b_nul,
         folder_call(lambda f: f.target(MANET)), None, None, None,
         "accepted: the NUL is removed (rule 'control characters', cleaned) and reported", check=c_nul_cleaned),
    Case("prompts-2gb-line", "a 2 GiB target file with no newline", _HUB_PROMPTS_WHERE, b_huge_line, a_huge_line,
         r"hubkit: error: \S+/target_image/Édouard Manet.csv: .*(too long|too large|limit).*", 2, None,
         "store, results.json"),
    Case("prompts-empty-file", "an empty target file", _HUB_PROMPTS_WHERE, b_empty_prompts,
         folder_call(lambda f: f.target(MANET)),
         r"\S+/target_image/Édouard Manet.csv: .*no usable target prompt.*", None, "PromptSetError",
         "store, results.json"),
    Case("concept-not-in-folder", "`--concept 'Claude Monet'` that the folder lacks", "`Session.concept_names` "
         "(collection: one line, exit 4)", b_folder, a_unknown_concept,
         r"--concept 'Claude Monet' is not in the prompt folder \(names match up to case, accents and '_' vs ' '\); "
         r"\S+ has: Édouard Manet", None, "ConfigError", "store, results.json"),
    Case("hostile-concept-path", "a manifest concept named `../../evil` (a file `evil.csv` sits two folders up)",
         "`PromptFolder.target`", b_hostile_manifest, a_hostile_concept,
         r"no target prompts for '\.\./\.\./evil': \S+/prompts/target_image/\.\./\.\./evil\.\* is missing \(this "
         r"prompt folder does not ship it\)", None, "MissingPromptFile",
         "store, results.json; nothing outside the folder is read (files are found by listing the set's folder)"),
    Case("hostile-concept-option", "`--concept` with `<script>`, quotes, `../` and a newline",
         "`Session.concept_names` (collection: one line, exit 4)", b_folder,
         lambda ctx, root: _concept_names(root, HOSTILE + "\nsecond line"),
         r"--concept '<script>alert\(\\'x\\'\)</script> \"Van\" \.\./\.\./\.\./evil\\nsecond line' is not in the "
         r"prompt folder \(names match up to case, accents and '_' vs ' '\); \S+ has: Édouard Manet", None,
         "ConfigError", "store, results.json"),
    Case("hostile-names-report", "a concept, neighbour, judge and prompt with `<script>`, quotes and `../`",
         "the HTML report (`summary_table`, `prompt_folder_section`, `judge_cell`)", lambda ctx: {},
         a_hostile_report, None, None, None, "escaped: no element from the name; the text shows it as written",
         check=c_escaped),
    Case("hostile-prompt-store", "prompts with `<script>`, quotes and `../` sent to the image store",
         "`ImageStore.images`", lambda ctx: {}, a_hostile_store, None, None, None,
         "files only under --image-cache, named by their sha256 key", check=c_inside_store),
    # -- judges -----------------------------------------------------------------------------------------------
    Case("judge-wrong-architecture", "face-identity `weights` that are a small MLP's state dict",
         "`hubkit judges check` (a `pytest` run builds the judge in the first check that asks it)",
         b_judge_wrong_arch, a_judges_check,
         r"\S+judges.toml: \[judges\] concept.celebrity \(face\): face-identity: \S+mlp.pt is not an "
         r"InceptionResnetV1 state dict \(.*\); expected .*", 1, None,
         "store, results.json"),
    Case("judge-returns-nan", "a judge that answers `Verdict('yes', nan)`", "`hubkit.aspects.common.detect`",
         b_images, a_judge(_nan_verdicts),
         r"judge 'broken-judge' returned a NaN score .*; .*Verdict.invalid\(\).*", None, "JudgeError",
         "store, results.json"),
    Case("judge-wrong-count", "a judge that returns 2 verdicts for 3 images", "`hubkit.aspects.common.detect`",
         b_images, a_judge(_short_verdicts),
         r"judge 'broken-judge' returned 2 verdicts for 3 images; .*", None, "JudgeError", "store, results.json"),
    # -- profiles ---------------------------------------------------------------------------------------------
    Case("profile-unknown", "`--profile nope`", "`hubkit_asserts.load_profile` (`profile` fixture)",
         lambda ctx: "nope", a_profile,
         r"unknown profile 'nope'; available profiles: default, \S.* \(or pass a path to a .toml file\)", None,
         "ConfigError", "store, results.json"),
    Case("profile-unknown-pytest", "`pytest --profile nope` (the pytest command line)", "`pytest` (collection: the profile is loaded)",
         lambda ctx: None, lambda ctx, _: pytest_run(ctx, "--profile", "nope", "--device", "cpu"),
         r"(hubkit: )?unknown profile 'nope'; available profiles: .*", 4, None, "store, results.json"),
    Case("profile-missing-threshold", "a profile rule with a source but no threshold",
         "`hubkit_asserts.load_profile`", b_profile('[faithfulness.target_proportion]\nsource = "mine"\n',
                                                    "nothreshold.toml"), a_profile,
         r"profile nothreshold.toml: rule 'faithfulness.target_proportion'.*no threshold.*; add .*", None,
         "ConfigError", "store, results.json"),
    Case("profile-malformed-threshold", "a profile threshold `\"0.1x\"` (a string)", "`hubkit_asserts.load_profile`",
         b_profile('extends = "default"\n[faithfulness.target_proportion]\nthreshold = "0.1x"\nsource = "mine"\n',
                   "badthreshold.toml"), a_profile,
         r"profile badthreshold.toml: rule 'faithfulness.target_proportion': threshold must be a finite number, got "
         r"'0.1x'", None, "ConfigError", "store, results.json"),
    # -- options ----------------------------------------------------------------------------------------------
    Case("budget-unknown", "`pytest --budget huge`", "`pytest` (`hubkit.pytest_plugin.run_options`)",
         lambda ctx: None, lambda ctx, _: pytest_run(ctx, "--budget", "huge"),
         r"--budget / hubkit_budget: 'huge' is not a budget; use one of smoke, ci, full, auto.*", 4, None,
         "store, results.json"),
    Case("device-cuda-without-cuda", "`--device cuda` on a machine without CUDA", "`Session.device`",
         b_no_cuda, a_device_cuda,
         r"--device 'cuda': no CUDA GPU is visible \(torch.cuda.is_available\(\) is False\); use --device cpu or auto",
         None, "ConfigError", "store, results.json"),
    Case("device-cuda-pytest", "`pytest --device cuda` on a machine without CUDA", "`pytest` (collection: `Session.device`)",
         b_no_cuda, lambda ctx, _: pytest_run(ctx, "--device", "cuda", "--concept", "Pointelli"),
         r"(hubkit: )?--device 'cuda': no CUDA GPU is visible .*", 4, None, "store, results.json"),
    # -- the image store --------------------------------------------------------------------------------------
    Case("image-cache-read-only", "`--image-cache` on a read-only folder", "`ImageStore` (`Session.store`)",
         b_store_images, a_read_only_cache,
         r"--image-cache \S+ is not writable.*; .*", None, "ConfigError", "store, results.json"),
    Case("disk-full", "the disk fills up while an image is written (ENOSPC, simulated)", "`ImageStore.save`",
         b_store_images, a_disk_full,
         r"cannot write \S+\.(png|json) \(.*No space left on device.*\); .*(free|--image-cache).*", None,
         "HubkitError", "every image written before, results.json; no temporary file", check=c_no_temporaries),
    Case("store-corrupt-png", "a PNG in the store that cannot be decoded", "`ImageStore.images`", b_corrupt_png,
         a_corrupt_png, r".*\S+\.png.*(unreadable|corrupt|cannot be read).*(generat|regenerat).*", None, None,
         "every other image, results.json; the bad one is generated again"),
    Case("store-other-version", "a store written by another hubkit version (key version 0)", "`ImageStore.images`",
         b_other_version, a_other_version, None, None, None,
         "accepted: the old images are kept untouched; keys carry the key version, so they are never reused",
         check=c_regenerated),
]


# ------------------------------------------------------------------------------------------------ the tests


class MessageGap(AssertionError):
    """The message, exit status or exception differs from the catalogue's: what an xfail case may fail with.

    Anything else (a file of the workspace changed or deleted, a case's own check) is a plain AssertionError, which
    fails the test even where the case is xfail: a gap in a message never hides lost data."""


def _params():
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, raises=MessageGap, reason=case.xfail)] if case.xfail else []
        yield pytest.param(case, id=case.id, marks=marks)


@pytest.fixture(scope="module")
def resources(tmp_path_factory) -> Resources:
    return Resources(tmp_path_factory.mktemp("bad-inputs-shared"))


def _workspace(tmp: Path, res: Resources) -> Ctx:
    """An earlier run's work: PNGs with sidecars in the image store and a results.json."""
    from PIL import Image

    run = tmp / "run"
    store = run / ".hubkit-cache" / "images"
    for i in range(3):
        key = hashlib.sha256(f"earlier image {i}".encode()).hexdigest()
        (store / key[:2]).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (i * 60, 10, 200)).save(store / key[:2] / f"{key}.png")
        (store / key[:2] / f"{key}.json").write_text(json.dumps({"key": key, "prompt": f"earlier {i}"}))
    results = run / "reports" / "results.json"
    results.parent.mkdir(parents=True)
    results.write_text(json.dumps({"schema": 1, "run": {"exit_status": 0},
                                   "records": [{"aspect": "faithfulness", "value": 0.25}]}))
    return Ctx(tmp=tmp, run=run, store=store, results=results, res=res)


def _hashes(root: Path, skip: set) -> dict[Path, str]:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and p not in skip and ".locks" not in p.parts}


def _gap(ok: bool, why: str) -> None:
    if not ok:
        raise MessageGap(why)


@pytest.mark.parametrize("case", list(_params()))
def test_bad_input(case: Case, tmp_path, monkeypatch, resources):
    monkeypatch.setenv("HUBKIT_CACHE_DIR", str(tmp_path / "model-cache"))
    ctx = _workspace(tmp_path, resources)
    built = case.build(ctx)
    before = _hashes(ctx.run, ctx.may_change)
    outcome = case.act(ctx, built)

    # nothing already computed is lost (asserted for every case, xfail or not)
    after = _hashes(ctx.run, set())
    lost = [str(p.relative_to(ctx.run)) for p, h in before.items() if after.get(p) != h]
    assert not lost, f"changed or deleted: {lost}"
    assert ctx.results.is_file() and json.loads(ctx.results.read_text())["records"][0]["value"] == 0.25
    if case.check is not None:
        case.check(ctx, built, outcome)

    # what the user is told
    if case.raises is None:
        _gap(outcome.exc is None, f"raised {type(outcome.exc).__name__}: {outcome.exc}")
    else:
        _gap(isinstance(outcome.exc, _exception_class(case.raises)),
             f"expected {case.raises}, got {type(outcome.exc).__name__}: {outcome.message}")
    if case.message is None:
        _gap(outcome.message is None, f"expected no message, got {outcome.message!r}")
    else:
        _gap(outcome.message is not None, "no message")
        _gap("\n" not in outcome.message, f"not one line:\n{outcome.message}")
        _gap(re.fullmatch(case.message, outcome.message) is not None, f"{outcome.message!r} !~ {case.message!r}")
    if case.exit is not None:
        _gap(outcome.exit == case.exit, f"exit {outcome.exit}, expected {case.exit}: {outcome.message}")


def _exception_class(name: str) -> type:
    import hubkit.errors
    import hubkit.prompts.records

    for module in (hubkit.errors, hubkit.prompts.records):
        if hasattr(module, name):
            return getattr(module, name)
    raise LookupError(name)


def test_the_catalogue_covers_the_issue():
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)
    for case in CASES:
        if case.xfail:
            assert re.match(r"[\w/.]+\.py(:[\w.]+)? ", case.xfail) and "fix:" in case.xfail, case.id


# ------------------------------------------------------------------------------------------------ docs/errors.md


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def render_catalogue() -> str:
    pinned = sum(c.xfail is None for c in CASES)
    lines = [
        "# Bad inputs and what hubkit says",
        "",
        "<!-- generated by `python tests/test_bad_inputs.py` from CASES in tests/test_bad_inputs.py; do not edit -->",
        "",
        f"{len(CASES)} bad inputs, each a case of `tests/test_bad_inputs.py`: {pinned} pinned (the row is what "
        f"happens today), {len(CASES) - pinned} xfail (the row is what the issue asks for; the status names where "
        "to fix it and how). Every case meets its input in a workspace that already holds an image store and a "
        "`reports/results.json`; both must be byte-identical afterwards, in xfail cases too (only a wrong message, "
        "exit status or exception is an expected failure).",
        "",
        "The message column is a regular expression that must match the whole message, which is one line. "
        "\"exit\" is the status of the command the case runs (`pytest`, `hubkit ...`, or a child process); a case "
        "that calls the engine shows the exception class instead. Through `pytest`, a `HubkitError` met at "
        "collection (options, `--concept`, `--model`/`--base-model` missing or not there, `--device`, the profile) "
        "stops the run with that one line and exit 4 (usage error) before any image is made; one that needs the "
        "weights read (a checkpoint whose keys do not fit) is met by the first check that loads the model. `hubkit` "
        "commands print `hubkit: error: <message>` and exit 2 (`prompts check`, `judges check`: 1 when an input is "
        "refused). \"none (no error)\": the input is accepted as the row's \"what is kept\" says, and a check of the "
        "case proves it.",
        "",
        "| input | where it is met | message (pattern) | exit | what is kept | status |",
        "|---|---|---|---|---|---|",
    ]
    for c in CASES:
        message = f"`{_cell(c.message)}`" if c.message is not None else "none (no error)"
        exit_ = str(c.exit) if c.exit is not None else (f"`{c.raises}`" if c.raises else "–")
        status = f"xfail: {_cell(c.xfail)}" if c.xfail else "pinned"
        lines.append(f"| **{c.id}**: {_cell(c.input)} | {_cell(c.where)} | {message} | {exit_} | {_cell(c.kept)} "
                     f"| {status} |")
    return "\n".join(lines) + "\n"


def test_errors_doc_is_generated_from_the_cases():
    assert DOC.is_file() and DOC.read_text(encoding="utf-8") == render_catalogue(), \
        "docs/errors.md is out of date with CASES; regenerate it: python tests/test_bad_inputs.py"


if __name__ == "__main__":
    DOC.write_text(render_catalogue(), encoding="utf-8")
    print(f"wrote {DOC} ({len(CASES)} cases)")
