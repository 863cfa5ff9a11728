"""Device choice per xdist worker and CPU thread shares."""

from __future__ import annotations

import pytest
import torch

from hubkit import devices
from hubkit.errors import ConfigError


@pytest.fixture
def gpus(monkeypatch):
    def set_count(n: int):
        monkeypatch.setattr(devices, "_cuda_count", lambda: n)

    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    return set_count


def test_cpu_when_there_is_no_gpu(gpus):
    gpus(0)
    assert devices.choose_device(None) == devices.choose_device("auto") == devices.choose_device("") == "cpu"
    assert devices.choose_device("CPU") == "cpu"
    with pytest.raises(ConfigError, match="--device 'cuda'.*no CUDA GPU"):
        devices.choose_device("cuda")


def test_workers_spread_over_gpus(gpus, monkeypatch):
    gpus(4)
    assert devices.choose_device(None) == "cuda:0"
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw5")
    assert devices.choose_device(None) == "cuda:1"
    assert devices.choose_device("cuda") == "cuda:1"
    assert devices.choose_device("cuda:3") == "cuda:3"  # explicit index wins
    with pytest.raises(ConfigError, match="only 4 CUDA"):
        devices.choose_device("cuda:4")
    gpus(1)
    assert devices.choose_device(None) == "cuda:0"


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cpu:1", "cuda:-1", "tpu"])
def test_bad_device_strings(bad, gpus):
    gpus(0)
    with pytest.raises(ConfigError, match="--device") as info:
        devices.choose_device(bad)
    assert "cuda:N" in str(info.value)
    with pytest.raises(ConfigError, match="--device"):
        devices.check_device(bad)


def test_thread_share(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(devices, "available_cores", lambda: 2)
    monkeypatch.delenv("HUBKIT_NUM_THREADS", raising=False)
    try:
        monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
        assert devices.configure_threads() == 2 == torch.get_num_threads()
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
        assert devices.configure_threads() == 1 == torch.get_num_threads()
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "4")
        assert devices.configure_threads() == 1
        monkeypatch.setenv("HUBKIT_NUM_THREADS", "3")
        assert devices.configure_threads() == 3
    finally:
        torch.set_num_threads(before)
