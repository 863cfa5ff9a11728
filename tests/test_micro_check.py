"""``hubkit micro check``'s rebuild bar: the sum of the training times the artifacts themselves recorded."""

from __future__ import annotations

import json

from hubkit_micro import check, paths


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def test_rebuild_bar_sums_each_artifacts_recorded_training_time(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "WEIGHTS", tmp_path)
    monkeypatch.setattr(paths, "BASE", tmp_path / "base")
    bar = check.rebuild_bar()["rebuild.minutes"]
    assert bar["value"] is None and not bar["ok"] and "sd, judges" in bar["bar"]

    _write(tmp_path / "base" / "hubkit.json", {"train_seconds": 6000.0})
    _write(tmp_path / "judges" / "metrics.json", {"timings": {"total_s": 1200.0}})
    _write(tmp_path / "unlearned" / "esd-x" / "hubkit.json", {"train_seconds": 60.0})
    bar = check.rebuild_bar()["rebuild.minutes"]
    assert bar["value"] == 121.0 and bar["ok"] and bar["n"] == 3

    _write(tmp_path / "base" / "hubkit.json", {"train_seconds": 9000.0})  # 171 min: over the 150 bar
    assert not check.rebuild_bar()["rebuild.minutes"]["ok"]
