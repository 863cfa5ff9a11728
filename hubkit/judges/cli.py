"""``hubkit judges list|check`` and ``hubkit fid-reference``: built-in entries of ``hubkit.cli.COMMANDS``.

    hubkit judges list                                   every registered judge, its roles and what "yes" means
    hubkit judges check --judges FILE [--images DIR]     build each configured judge, run it on a few images
    hubkit judges fetch --judges FILE                    download what the table names on the Hugging Face hub
    hubkit fid-reference IMAGES_DIR -o stats.npz --judges FILE    FID statistics of a folder (COCO-30k for HUB)

``check`` prints one line per configured judge: its roles, name, version, each weights file's sha256, threshold
and seconds per image, or one line naming what is missing and the fix; it exits 1 when any judge failed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from hubkit.cli import COMMANDS
from hubkit.errors import ConfigError, HubkitError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


# ----------------------------------------------------------------------------------------------- judges list
def _list(args) -> int:
    from hubkit.judges import JUDGES, roles_of

    import inspect

    for name, cls in JUDGES.items():
        files = ", ".join(getattr(cls, "weight_options", {})) or "-"
        param = inspect.signature(cls).parameters.get("threshold")
        threshold = param.default if param is not None and param.default is not inspect.Parameter.empty else None
        print(f"{name:<16} roles: {', '.join(roles_of(cls)) or 'none':<45} files: {files:<34} "
              f"default threshold: {threshold if threshold is not None else '-'}  ({cls.__module__})")
        print(f"{'':<16} {cls.detects}")
    for why in JUDGES.broken():
        print(f"broken: {why}")
    return 0


# ---------------------------------------------------------------------------------------------- judges check
def _config(args):
    from hubkit.judges.config import load_judges_file, parse_judges
    from hubkit.prompts.manifest import read_manifest

    if args.judges:
        return load_judges_file(args.judges)
    if args.prompts:
        table = read_manifest(Path(args.prompts)).get("judges")
        if table is None:
            raise ConfigError(f"{args.prompts}/hubkit.toml has no [judges] table; fix: pass --judges FILE")
        return parse_judges(table, source=f"{args.prompts}/hubkit.toml", base=Path(args.prompts))
    raise ConfigError("judges check needs --judges FILE (or --prompts DIR whose hubkit.toml has a [judges] table)")


def sample_images(n: int, folder: str | None = None, size: int = 64) -> list:
    """``n`` images from ``folder`` (sorted), or ``n`` seeded synthetic ones (gradients with noise)."""
    import numpy as np
    from PIL import Image

    if folder:
        files = image_files(Path(folder))[:n]
        if not files:
            raise ConfigError(f"--images {folder}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return [Image.open(f).convert("RGB") for f in files]
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, size)[None, :, None]
    out = []
    for i in range(n):
        base = ramp * rng.uniform(0.2, 1.0, 3)[None, None, :] + rng.normal(0, 20, (size, size, 3))
        out.append(Image.fromarray(np.clip(np.roll(base, 7 * i, axis=1), 0, 255).astype(np.uint8)))
    return out


def _run_role(judge, role: str, images, probe: str):
    """Run ``judge`` in ``role`` on ``images``; a short summary of what came out."""
    import numpy as np

    n = len(images)
    if role.startswith("concept") or role == "noun":
        k = int(getattr(judge, "references", 0) or 0)
        if k:  # a reference-based judge: each image is compared with the next k of the sample
            refs = [[images[(i + j + 1) % n] for j in range(k)] for i in range(n)]
            verdicts = judge.detect(images, probe, references=refs)
        else:
            verdicts = judge.detect(images, probe)
        counts = {label: sum(v.label == label for v in verdicts) for label in ("yes", "no", "invalid")}
        return f"{counts['yes']}/{n} yes" + (f", {counts['invalid']} invalid" if counts["invalid"] else "")
    if role == "alignment":
        scores = [float(s) for s in judge.score(images, ["a photo"] * n)]
        return f"mean score {np.nanmean(scores):.3f}"
    if role == "fid":
        rows = judge.fid_features(images)
        return f"features {rows.shape[0]}x{rows.shape[1]} {rows.dtype}"
    scores = [float(s) for s in judge.quality(images)]
    return f"mean quality {np.nanmean(scores):.3f}"


def _check(args) -> int:
    config = _config(args)
    images = sample_images(args.n, args.images)
    groups: dict[tuple, list] = {}
    for role, spec in config.entries():
        groups.setdefault(spec.key, []).append((role, spec))
    print(f"judges of {config.source} on {len(images)} {'images from ' + args.images if args.images else 'synthetic images'}")
    failed = 0
    for entries in groups.values():
        roles = ", ".join(role for role, _ in entries)
        spec = entries[0][1]
        try:
            t0 = time.perf_counter()
            judge = spec.build()
            load_s = time.perf_counter() - t0
            outs = []
            per_image = []
            for role, _ in entries:
                probe = role.split(".", 1)[1] if role.startswith("concept.") else ("a dog" if role == "noun" else "the concept")
                t0 = time.perf_counter()
                outs.append(_run_role(judge, role, images, probe))
                per_image.append((time.perf_counter() - t0) / max(1, len(images)))
            info = judge.info()
        except HubkitError as exc:
            failed += 1
            print(f"FAIL [{roles}] {spec.label}: {exc}")
            continue
        shas = info.get("weights_sha256") or {}
        sha = ", ".join(f"{k} sha256 {v}" for k, v in shas.items()) or "weights sha256 - (no weights file)"
        threshold = info.get("threshold")
        print(f"ok   [{roles}] {spec.label}: judge {info['name']}, version {info['version']}, {sha}, threshold "
              f"{threshold if threshold is not None else '-'}, {max(per_image):.4f} s/image (load {load_s:.1f} s); "
              f"{'; '.join(outs)}")
    if config.fid_reference:
        try:
            print(f"ok   [fid_reference] {config.fid_reference_path()}")
        except HubkitError as exc:
            failed += 1
            print(f"FAIL [fid_reference] {exc}")
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------------- judges fetch
def _fetch(args) -> int:
    """Download, into the Hugging Face cache, every ``hf://`` file and every model repo id a [judges] table names
    (the one command that uses the network); a local path that is missing is listed with where to get it."""
    import huggingface_hub
    from huggingface_hub import constants

    from hubkit.judges.config import HF_SCHEME, REPO_ID

    config = _config(args)
    constants.HF_HUB_OFFLINE = False  # the user asked for the network, for this command only
    seen, missing, fetched = set(), 0, 0
    for role, spec in config.entries():
        if spec.key in seen:
            continue
        seen.add(spec.key)
        cls, options = spec.judge_class(), spec.options
        wanted = [(n, h, "file") for n, h in getattr(cls, "weight_options", {}).items()]
        wanted += [(n, h, "repo") for n, h in getattr(cls, "repo_options", {}).items()]
        for option, hint, kind in wanted:
            value = options.get(option)
            if not isinstance(value, str) or not value:
                continue
            local = Path(value).expanduser()
            if not local.is_absolute() and spec.base:
                local = Path(spec.base) / local
            if not value.startswith(HF_SCHEME) and local.exists():
                print(f"ok      [{role}] {spec.label}.{option}: {local}")
                continue
            uri = value[len(HF_SCHEME):] if value.startswith(HF_SCHEME) else value
            if kind == "file" and value.startswith(HF_SCHEME):
                parts = uri.split("/")
                repo, filename = "/".join(parts[:2]), "/".join(parts[2:])
                repo, _, revision = repo.partition("@")
                got = huggingface_hub.hf_hub_download(repo, filename, revision=revision or None)
            elif kind == "repo" and REPO_ID.fullmatch(uri):
                repo, _, revision = uri.partition("@")
                got = huggingface_hub.snapshot_download(repo, revision=revision or None)
            else:
                missing += 1
                print(f"MISSING [{role}] {spec.label}.{option}: {local} (not on the hub; get it yourself: {hint})")
                continue
            fetched += 1
            print(f"fetched [{role}] {spec.label}.{option}: {value} -> {got}")
    print(f"{fetched} fetched, {missing} missing; then run `hubkit judges check --judges {config.source}`")
    return 1 if missing else 0


@COMMANDS.register("judges")
def add_judges_parser(subparsers) -> None:
    judges = subparsers.add_parser("judges", help="list registered judges; check the ones a [judges] table configures")
    sub = judges.add_subparsers(dest="judges_command", required=True)
    listing = sub.add_parser("list", help="every registered judge: roles, files it loads, what 'yes' means")
    listing.set_defaults(func=_list)
    check = sub.add_parser("check", help="build each configured judge and run it on a few images")
    check.add_argument("--judges", help="TOML file with a [judges] table, or a shipped one by name (hub)")
    check.add_argument("--prompts", help="a prompt folder whose hubkit.toml has a [judges] table (without --judges)")
    check.add_argument("--images", help="a folder of images to run the judges on (default: synthetic images)")
    check.add_argument("-n", type=int, default=4, help="how many images (default 4)")
    check.set_defaults(func=_check)
    fetch = sub.add_parser("fetch", help="download the hf:// files and model repo ids a [judges] table names into "
                                         "the Hugging Face cache (the only command that uses the network)")
    fetch.add_argument("--judges", help="TOML file with a [judges] table, or a shipped one by name (hub)")
    fetch.add_argument("--prompts", help="a prompt folder whose hubkit.toml has a [judges] table (without --judges)")
    fetch.set_defaults(func=_fetch)


# ---------------------------------------------------------------------------------------------- fid-reference
def image_files(folder: Path) -> list[Path]:
    """Every image file under ``folder``, recursively, sorted (HUB's T2IBenchmark walks folders the same way)."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def write_reference(folder: Path, out: Path, judge, batch: int = 64, progress=None) -> tuple[Path, int]:
    """FID statistics (``mu``, ``sigma``, ``n``, and the judge's ``version``) of every image under ``folder``."""
    import io

    import numpy as np
    from PIL import Image

    from hubkit import atomic
    from hubkit.metrics.fid import feature_statistics

    files = image_files(folder)
    if len(files) < 2:
        raise ConfigError(f"{folder}: {len(files)} image files; FID statistics need at least 2 "
                          f"({', '.join(sorted(IMAGE_SUFFIXES))}, searched recursively)")
    rows = []
    for start in range(0, len(files), batch):
        chunk = files[start:start + batch]
        images = []
        for f in chunk:
            with Image.open(f) as im:
                images.append(im.convert("RGB"))
        rows.append(judge.fid_features(images))
        if progress:
            progress(min(start + batch, len(files)), len(files))
    features = np.concatenate(rows)
    mu, sigma = feature_statistics(features)
    buffer = io.BytesIO()
    np.savez(buffer, mu=mu, sigma=sigma, n=np.array(len(features)), judge=np.array(judge.name),
             version=np.array(judge.version))
    return atomic.write_bytes(out, buffer.getvalue()), len(features)


def _fid_reference(args) -> int:
    from hubkit.judges.config import load_judges_file

    config = load_judges_file(args.judges)
    spec = config.role("fid")
    if spec is None:
        raise ConfigError(f"{config.source}: [judges] names no fid judge; fix: add fid = \"inception\" (with its "
                          f"weights) to the [judges] table")
    folder = Path(args.images_dir)
    if not folder.is_dir():
        raise ConfigError(f"fid-reference: {folder} is not a folder of images")
    judge = spec.build()

    def progress(done, total):
        print(f"\r{done}/{total} images", end="", file=sys.stderr, flush=True)

    path, n = write_reference(folder, Path(args.output), judge, args.batch, progress if not args.quiet else None)
    if not args.quiet:
        print(file=sys.stderr)
    print(f"wrote {path}: FID statistics of {n} images, judge {judge.name} {judge.version}")
    return 0


@COMMANDS.register("fid-reference")
def add_fid_reference_parser(subparsers) -> None:
    p = subparsers.add_parser("fid-reference", help="FID reference statistics (mu, sigma) of a folder of images, "
                                                    "with the fid judge of a [judges] table")
    p.add_argument("images_dir", metavar="IMAGES_DIR", help="folder of images, searched recursively (e.g. COCO val2014 30k)")
    p.add_argument("-o", "--output", required=True, help="the .npz to write (mu, sigma, n, judge version)")
    p.add_argument("--judges", required=True, help="TOML file with a [judges] table naming fid (or a shipped one: hub)")
    p.add_argument("--batch", type=int, default=64, help="images per feature batch (default 64)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=_fid_reference)
