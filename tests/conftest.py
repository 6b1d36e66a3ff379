"""Test configuration: quiet TensorFlow, no network, the offline data folder."""

import os
import socket

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402


def _refuse(*args, **kwargs):
    raise OSError("network access is disabled during tests")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every test runs with outgoing connections refused (and name lookups too)."""
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Downloads and extracts go to a per-test cache, never to ~/.cache."""
    monkeypatch.setenv("TFOVP_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def data_dir():
    """The real datasets folder from TFOVP_DATA_DIR (CI sets it); skip when unset."""
    path = os.environ.get("TFOVP_DATA_DIR")
    if not path:
        pytest.skip("TFOVP_DATA_DIR is not set: real-data checks need the offline data folder")
    return path


@pytest.hookimpl(tryfirst=True)  # before `-m` selects
def pytest_collection_modifyitems(items):
    """needs_data on every test that asks for the real data; unit on every test that is
    neither integration nor cluster (modules mark those with `pytestmark`)."""
    for item in items:
        if "data_dir" in item.fixturenames:
            item.add_marker(pytest.mark.needs_data)
        if not any(item.get_closest_marker(name) for name in ("integration", "cluster")):
            item.add_marker(pytest.mark.unit)
