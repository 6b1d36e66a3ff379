"""Test configuration: quiet TensorFlow, no network, the offline data folder, and on
another Keras backend than TensorFlow a test stopped by a refusal of that backend
reported as skipped, with the refusal as its reason."""

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


# One-line refusals that name a backend's limit: tfovp's (float64 computed in float32,
# `tfovp.checks.check_float_dtype`; the sweep's backends) and Keras' own.
BACKEND_LIMITS = (
    "by Keras on the PyTorch backend",
    "which the JAX backend has off",
    "tfovp.sweep runs on the TensorFlow and JAX backends",
    "must be 1 with the PyTorch backend",
)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Off TensorFlow, a test that ends in a ValueError naming one of BACKEND_LIMITS is a
    skip whose reason is that line (the suite's float64 references, the sweep and
    `steps_per_execution > 1` are refused on PyTorch), not a failure; on TensorFlow, the
    reference, nothing changes."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow" or call.when != "call" or call.excinfo is None:
        return
    message = str(call.excinfo.value).splitlines()[0] if call.excinfo.errisinstance(ValueError) else ""
    if any(limit in message for limit in BACKEND_LIMITS):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {message}")
