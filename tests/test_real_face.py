"""The real face, end to end (issue 13): ``pytest suites`` on the real code path, in a subprocess.

``--base-model`` is a tiny random-weight SD-1.x diffusers folder, ``--model`` an ESD-style UNet ``.pt`` of it (its
cross-attention keys and values changed), ``--prompts`` HUB's own prompt folder with a concept of every category,
and ``--judges`` a table of tiny random-weight instances of every real judge architecture (the VLM judge on a tiny
Qwen2.5-VL for style and IP and a tiny InternVL for nouns, face-identity with MTCNN's real weights for celebrities,
q16, clip-score, laion-aesthetic, inception; NudeNet's real model for Nudity), with FID reference statistics
written by ``hubkit fid-reference``'s code. Every record names the judge that produced it with its version and
weights hashes, and so does the report. Every test must reach pass, fail or inconclusive (a verdict recorded in
``results.json``), or a skip whose reason names what is missing; nothing may raise an unexpected exception.

Random judges see nothing, so the judge canary would rightly refuse every concept: the first run uses the
``no-canary`` profile, which says so. The second run, with the default profile, must show the canary refusing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hubkit_reports.results import validate

REPO = Path(__file__).resolve().parents[1]
HUB_PROMPTS = Path(os.environ.get("HUBKIT_HUB_PROMPTS", REPO.parent / "shared" / "hub-prompts"))
# one concept per category, two for NSFW: Nudity (NudeNet's real model) and Violent (Q16, which HUB uses for both;
# HUB ships no Violent.csv, so its neighbours come from NSFW.csv, the shared NSFW model's file)
CONCEPTS = {"Van Gogh": "style", "Mickey Mouse": "ip", "Brad Pitt": "celebrity", "Nudity": "nsfw", "Violent": "nsfw"}

pytestmark = pytest.mark.skipif(not (HUB_PROMPTS / "target_image").is_dir(),
                                reason=f"HUB's prompt folder is not at {HUB_PROMPTS} (set HUBKIT_HUB_PROMPTS)")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    import torch
    from PIL import Image

    from hubkit.judges.cli import write_reference
    from hubkit.judges.config import load_judges_file
    from hubkit.judges.testing import write_tiny_judges
    from hubkit.testing import save_tiny_pipeline

    root = tmp_path_factory.mktemp("real-face")
    base = save_tiny_pipeline(root / "sd-tiny")
    # SD-1.x's real classes and keys at 16 px and 2 steps: the whole suite in about a minute on 2 cores
    (base / "hubkit.json").write_text(json.dumps({"steps": 2, "guidance": 5.0, "height": 16, "width": 16}))
    # ESD-x edits the cross-attention: a UNet-only state dict with those weights moved, as ESD's scripts save it
    from safetensors.torch import load_file

    state = load_file(str(base / "unet" / "diffusion_pytorch_model.safetensors"))
    g = torch.Generator().manual_seed(1)
    esd = {k: (v + 0.05 * torch.randn(v.shape, generator=g) if ".attn2.to_k." in k or ".attn2.to_v." in k else v)
           for k, v in state.items()}
    model = root / "esd" / "esd-unet.pt"
    model.parent.mkdir()
    torch.save(esd, model)
    (root / "esd" / "esd-unet.hubkit.json").write_text(json.dumps(
        {"method": "esd", "train_seconds": 60.0, "train_peak_mem_mb": 900.0}))
    judges = write_tiny_judges(root / "judges", inception_feature=64, fid_reference="coco-ref.npz", hub_judges=True)
    coco = root / "coco"
    coco.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):  # the COCO-30k stand-in: any folder of images
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(coco / f"{i}.png")
    write_reference(coco, judges.parent / "coco-ref.npz", load_judges_file(judges).role("fid").build())
    return {"root": root, "base": base, "model": model, "judges": judges, "cache": root / "images"}


def run_suites(world: dict, name: str, *args: str) -> tuple[subprocess.CompletedProcess, list[dict], list[dict]]:
    """``pytest suites`` in a subprocess; (process, results.json records, one dict per junit test case)."""
    rundir = world["root"] / name
    shutil.copytree(REPO / "suites", rundir / "suites")
    concepts = [a for c in CONCEPTS for a in ("--concept", c)]
    cmd = [sys.executable, "-m", "pytest", "suites", "--rootdir", str(rundir), "-p", "no:cacheprovider",
           "-p", "no:randomly", "-q", "-rA", f"--junitxml={rundir / 'junit.xml'}",
           "--model", str(world["model"]), "--base-model", str(world["base"]), "--prompts", str(HUB_PROMPTS),
           *concepts, "--budget", "smoke", "--judges", str(world["judges"]), "--image-cache", str(world["cache"]),
           f"--html={rundir / 'reports' / 'unlearning.html'}", "--self-contained-html", *args]
    proc = subprocess.run(cmd, cwd=rundir, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    results = rundir / "reports" / "results.json"
    records = []
    if results.is_file():
        document = json.loads(results.read_text())
        validate(document)  # every field of a real-face run against reports/results.schema.json
        records = document["records"]
    cases = []
    junit = rundir / "junit.xml"
    if junit.is_file():
        for case in ET.parse(junit).getroot().iter("testcase"):
            outcome = {"name": case.get("name"), "classname": case.get("classname"), "status": "passed", "message": ""}
            for tag in ("failure", "error", "skipped"):
                node = case.find(tag)
                if node is not None:
                    outcome.update(status=tag, type=node.get("type", ""), message=node.get("message", ""))
            cases.append(outcome)
    return proc, records, cases


def _verdict_of(case: dict, records: list[dict]) -> str | None:
    """The verdict results.json holds for this junit test case (``suites.test_x`` + name -> its node id)."""
    nodeid = case["classname"].replace(".", "/") + ".py::" + case["name"]
    found = [r["verdict"] for r in records if r.get("test") == nodeid]
    return found[-1] if found else None


def test_suites_reach_a_verdict_on_the_real_code_path(world):
    proc, records, cases = run_suites(world, "no-canary", "--profile", "no-canary")
    tail = proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.returncode in (0, 1), tail  # 0 all passed, 1 some failed; never interrupted or a usage/internal error
    assert cases, tail
    by_status: dict[str, list] = {}
    for case in cases:
        by_status.setdefault(case["status"], []).append(case)
    assert not by_status.get("error"), [(c["name"], c["message"][:300]) for c in by_status["error"]]
    for case in by_status.get("failure", []):  # a failure is a verdict (fail or inconclusive), never a crash
        verdict = _verdict_of(case, records)
        assert verdict in ("fail", "inconclusive"), (case["name"], case["message"][:500])
    for case in by_status.get("skipped", []):
        if case["type"] == "pytest.xfail":  # an inconclusive verdict that does not fail the run
            assert _verdict_of(case, records) == "inconclusive", (case["name"], case["message"][:300])
        else:  # the reason names what is missing (or the profile rule that is off)
            assert any(w in case["message"] for w in ("not applicable:", "disabled in profile", "prompt set unusable")), \
                (case["name"], case["message"])
    # every concept of every category went through every aspect, judged by the judge its table names; every judged
    # record says who judged it: the table's label, the registered judge, its version and each weights file's sha256
    for r in records:
        if r.get("judge"):
            info = r["judge_info"]
            assert isinstance(info, dict) and info["version"] and info.get("weights_sha256"), r
            assert r["judge"] == info.get("configured_as", info["name"]), r
    name = {r["aspect"]: r["judge_info"]["name"] for r in records if r.get("judge")}
    judges = {r.get("concept"): r["judge_info"]["name"] for r in records
              if r.get("aspect") == "faithfulness.target_proportion"}
    assert judges == {"Van Gogh": "vlm", "Mickey Mouse": "vlm", "Brad Pitt": "face-identity",
                      "Nudity": "nudenet", "Violent": "q16"}, judges
    assert {r["judge"] for r in records if r["aspect"].startswith("pinpoint.")} == {"vlm-noun"}  # the InternVL one
    assert name.get("alignment.general") == "clip-score" and name.get("faithfulness.target_quality") == "laion-aesthetic"
    assert name.get("faithfulness.fid_vs_base_noise_ratio") == "inception"
    assert name.get("faithfulness.fid_vs_reference") == "inception"  # against the hubkit fid-reference statistics
    report = (world["root"] / "no-canary" / "reports" / "unlearning.html").read_text()
    assert "judge (version; weights sha256)" in report and "facenet-pytorch-2.5.3" in report
    aspects = {r["aspect"].split(".")[0] for r in records}
    assert aspects >= {"faithfulness", "alignment", "pinpoint", "multilingual", "robustness", "efficiency"}, aspects


def test_without_the_no_canary_profile_the_canary_refuses_random_judges(world):
    selection = "test_target_proportion and not vs_base and not language"
    proc, records, cases = run_suites(world, "canary", "-k", selection)
    assert proc.returncode == 1, proc.stdout[-3000:]
    refused = [c for c in cases if c["status"] == "error" and "judge cannot see" in c["message"]]
    assert {c["name"].split("[", 1)[1].rstrip("]") for c in refused} == set(CONCEPTS), \
        [(c["name"], c["status"], c["message"][:200]) for c in cases]
    assert not [r for r in records if r["aspect"] == "faithfulness.target_proportion"]  # no erasure certified
