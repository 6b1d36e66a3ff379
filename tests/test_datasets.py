"""Dataset parsers, integrity checks, search order and the real offline files."""

import gzip
import io
import pathlib
import shutil
import struct
import time
import zipfile

import numpy as np
import pytest

from tfovp import datasets
from tfovp.datasets import __main__ as report
from tfovp.datasets import abalone, files, gas_sensor, mnist
from tfovp.datasets.preprocessing import preprocess, scale


def _dat_line(gas, concentration, values):
    features = " ".join(f"{i + 1}:{v:.6f}" for i, v in enumerate(values))
    return f"{gas};{concentration:.6f} {features} \n"


def _write(path, text, mode="w"):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode) as handle:
        handle.write(text)
    return path


# ---------------------------------------------------------------- gas sensor parsing


def test_parse_tiny_dat_file(tmp_path):
    rows = [(1, 10.0, np.arange(128) * 0.5), (2, 50.0, -np.arange(128.0)), (1, 2.5, np.ones(128))]
    path = _write(tmp_path / "batch1.dat", "".join(_dat_line(*r) for r in rows))
    x, gas, concentration = gas_sensor.read_dat(path)
    assert x.shape == (3, 128) and x.dtype == np.float64
    np.testing.assert_array_equal(gas, [1, 2, 1])
    np.testing.assert_array_equal(concentration, [10.0, 50.0, 2.5])
    np.testing.assert_array_equal(x[0], np.arange(128) * 0.5)
    lines = gas_sensor.ethanol_lines([path])
    assert len(lines) == 2 and lines[0] == _dat_line(*rows[0]) and lines[1] == _dat_line(*rows[2])


@pytest.mark.parametrize(
    "line, match",
    [
        (_dat_line(1, 10.0, np.ones(127)), "expected 128 features, found 127"),
        (_dat_line(1, 10.0, np.ones(128)).replace("5:1.000000", "5:abc"), "non-numeric value"),
        (_dat_line(1, 10.0, np.ones(128)).replace("5:1.000000", "6:1.000000"), "feature 5 expected"),
        ("hello world\n", "expected '<gas>;<concentration>"),
    ],
)
def test_bad_dat_lines(tmp_path, line, match):
    path = _write(tmp_path / "bad.dat", _dat_line(1, 1.0, np.zeros(128)) + line)
    with pytest.raises(files.DataFormatError, match=f"bad.dat:2: {match}"):
        gas_sensor.read_dat(path)


def test_official_batch_file_values(data_dir):
    path = pathlib.Path(data_dir) / "gas-sensor-drift" / "batch1.dat"
    x, gas, concentration = gas_sensor.read_dat(path)
    assert x.shape == (445, 128)
    assert (gas[0], concentration[0], x[0, 0], x[0, 1], x[0, 2], x[0, 127]) == (
        1,
        10.0,
        15596.1621,
        1.868245,
        2.371604,
        -2.654529,
    )
    assert np.sum(gas == 1) == 90 and set(gas.tolist()) <= set(range(1, 7))
    # The gas-1 lines of batch 1, verbatim, open the Ethanol extract.
    ethanol = (pathlib.Path(data_dir) / "gas-sensor-drift" / "ethanol.dat").read_text().splitlines(True)
    assert gas_sensor.ethanol_lines([path]) == ethanol[:90]


def test_ethanol_real_data(data_dir):
    x, y, batch = datasets.load_ethanol(data_dir=data_dir, download=False, with_batch=True)
    assert x.shape == (2565, 128) and y.shape == (2565,) and x.dtype == np.float64
    assert (y.min(), y.max()) == (2.5, 600.0)
    assert (y[0], x[0, 0], x[0, 127]) == (10.0, 15596.1621, -2.654529)
    np.testing.assert_array_equal(np.bincount(batch)[1:], gas_sensor.ETHANOL_PER_BATCH)


def test_full_gas_set_names_missing_batches(data_dir, tmp_path):
    folder = tmp_path / "partial"
    shutil.copytree(
        pathlib.Path(data_dir) / "gas-sensor-drift",
        folder / "gas-sensor-drift",
        ignore=shutil.ignore_patterns("batch7.dat", "batch10.dat"),
    )
    with pytest.raises(files.DatasetNotFoundError, match="missing: batch7.dat, batch10.dat"):
        datasets.load_gas_sensor_drift(data_dir=folder, download=False)


def test_full_gas_set_with_all_batches(tmp_path, monkeypatch):
    # Ten tiny batch files with matching row counts; checksums patched to theirs.
    monkeypatch.setattr(gas_sensor, "ROWS_PER_BATCH", (2,) * 10)
    folder = tmp_path / "data"
    specs = {}
    for b in range(1, 11):
        path = _write(
            folder / f"gas-sensor-drift/batch{b}.dat",
            _dat_line(1, b, np.full(128, b)) + _dat_line(3, 1.0, np.zeros(128)),
        )
        specs[b] = files.DataFile(f"gas-sensor-drift/batch{b}.dat", files.sha256_of(path))
    monkeypatch.setattr(gas_sensor, "BATCH_FILES", specs)
    full = datasets.load_gas_sensor_drift(data_dir=folder, download=False)
    assert full["x"].shape == (20, 128)
    np.testing.assert_array_equal(full["gas"], [1, 3] * 10)
    np.testing.assert_array_equal(full["batch"], np.repeat(np.arange(1, 11), 2))


def test_ethanol_cache_is_verified_and_atomic(data_dir, tmp_path):
    # Batches 7 and 10 are absent: their Ethanol rows are missing, so the extract of the
    # other eight cannot match the published SHA-256, and nothing is left behind.
    batches = [pathlib.Path(data_dir) / f"gas-sensor-drift/batch{b}.dat" for b in (1, 2)]
    target = tmp_path / "cache" / "ethanol.dat"
    with pytest.raises(files.ChecksumError, match="expected e2ff4dd7"):
        gas_sensor.write_ethanol_cache(batches, target)
    assert not target.parent.exists() or list(target.parent.iterdir()) == []


# ---------------------------------------------------------------- abalone


def test_parse_abalone_rows(tmp_path):
    path = _write(
        tmp_path / "abalone.data", "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15\nI,0.1,0.2,0.3,0.4,0.5,0.6,0.7,7\n"
    )
    x, y = abalone.read_abalone(path)
    np.testing.assert_array_equal(x[0], [1, 0, 0, 0.455, 0.365, 0.095, 0.514, 0.2245, 0.101, 0.15])
    np.testing.assert_array_equal(x[1, :3], [0, 0, 1])
    np.testing.assert_array_equal(y, [15, 7])


@pytest.mark.parametrize(
    "row, match",
    [
        ("X,1,1,1,1,1,1,1,1", "sex must be one of"),
        ("M,1,1,1,1,1,1,1", "expected 9 comma-separated fields, found 8"),
        ("M,1,1,1,one,1,1,1,1", "non-numeric value"),
    ],
)
def test_bad_abalone_rows(tmp_path, row, match):
    path = _write(tmp_path / "abalone.data", row + "\n")
    with pytest.raises(files.DataFormatError, match=match):
        abalone.read_abalone(path)


def test_abalone_real_data(data_dir):
    x, y = datasets.load_abalone(data_dir=data_dir, download=False)
    assert x.shape == (4177, 10) and y.shape == (4177,)
    np.testing.assert_array_equal(x[:, :3].sum(axis=0), [1528, 1307, 1342])
    assert (y.min(), y.max()) == (1, 29)
    np.testing.assert_array_equal(x[0], [1, 0, 0, 0.455, 0.365, 0.095, 0.514, 0.2245, 0.101, 0.15])


# ---------------------------------------------------------------- MNIST / IDX


def _idx(path, magic, array):
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())
    return path


def test_parse_small_idx_pair(tmp_path):
    images = np.arange(3 * 4 * 5).reshape(3, 4, 5)
    labels = np.array([7, 0, 9])
    got_images = mnist.read_idx(_idx(tmp_path / "i.gz", mnist.IMAGE_MAGIC, images), mnist.IMAGE_MAGIC)
    got_labels = mnist.read_idx(_idx(tmp_path / "l.gz", mnist.LABEL_MAGIC, labels), mnist.LABEL_MAGIC)
    assert got_images.dtype == np.uint8 and got_images.shape == (3, 4, 5)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_bad_idx_files(tmp_path):
    path = _idx(tmp_path / "l.gz", mnist.LABEL_MAGIC, np.arange(10))
    with pytest.raises(files.DataFormatError, match="IDX magic 0x00000801, expected 0x00000803"):
        mnist.read_idx(path, mnist.IMAGE_MAGIC)
    truncated = tmp_path / "t.gz"
    truncated.write_bytes(path.read_bytes()[:-6])
    with pytest.raises(files.DataFormatError, match="not a complete gzip file"):
        mnist.read_idx(truncated, mnist.LABEL_MAGIC)
    short = tmp_path / "s.gz"
    with gzip.open(short, "wb") as handle:
        handle.write(struct.pack(">II", mnist.LABEL_MAGIC, 12) + bytes(5))
    with pytest.raises(files.DataFormatError, match=r"header says \(12,\) = 12 values, file has 5"):
        mnist.read_idx(short, mnist.LABEL_MAGIC)


def test_mnist_real_data(data_dir):
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist(data_dir=data_dir, download=False)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(y_train), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    assert np.bincount(y_test).sum() == 10000 and x_train.max() == 255


# ---------------------------------------------------------------- integrity and search


def test_checksum_mismatch_names_file_and_digests(data_dir, tmp_path):
    corrupt = tmp_path / "data" / "abalone" / "abalone.data"
    corrupt.parent.mkdir(parents=True)
    content = (pathlib.Path(data_dir) / "abalone" / "abalone.data").read_bytes()
    corrupt.write_bytes(content.replace(b"0.455", b"0.456", 1))
    with pytest.raises(files.ChecksumError) as error:
        datasets.load_abalone(data_dir=tmp_path / "data", download=False)
    message = str(error.value)
    assert str(corrupt) in message and abalone.DATA_FILE.sha256 in message and "actual" in message


def test_missing_file_lists_places_url_and_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("TFOVP_DATA_DIR", str(tmp_path / "env"))
    (tmp_path / "explicit").mkdir()
    with pytest.raises(files.DatasetNotFoundError) as error:
        datasets.load_abalone(data_dir=tmp_path / "explicit", download=False)
    message = str(error.value)
    for expected in [
        str(tmp_path / "explicit"),
        str(tmp_path / "env"),
        str(tmp_path / "cache"),
        abalone.DATA_FILE.urls[0],
        "TFOVP_DATA_DIR",
        "abalone/abalone.data",
    ]:
        assert expected in message


def test_a_data_dir_that_does_not_exist_is_an_error_even_with_the_variable_set(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TFOVP_DATA_DIR", data_dir)  # would find the file: the given folder must not be skipped
    with pytest.raises(ValueError, match="data_dir=.*nowhere"):
        datasets.load_abalone(data_dir=tmp_path / "nowhere", download=False)


def test_search_order(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TFOVP_DATA_DIR", data_dir)
    assert files.find(abalone.DATA_FILE) == pathlib.Path(data_dir) / "abalone" / "abalone.data"
    explicit = _write(tmp_path / "mine" / "abalone" / "abalone.data", "x")
    assert files.find(abalone.DATA_FILE, tmp_path / "mine") == explicit


@pytest.fixture
def no_data_env(monkeypatch, tmp_path):
    """Search only the explicit folder (an empty `tmp_path / "nothing"`) and the (empty,
    per-test) cache."""
    monkeypatch.delenv("TFOVP_DATA_DIR", raising=False)
    (tmp_path / "nothing").mkdir()


def test_no_network_fails_with_the_message(tmp_path, no_data_env):
    with pytest.raises(files.DatasetNotFoundError, match="Download failed: .*network access is disabled"):
        datasets.load_abalone(data_dir=tmp_path / "nothing")


def test_a_server_that_never_answers_fails_within_the_timeout(tmp_path, monkeypatch, no_data_env):
    """A download from a host that accepts the connection and then stays silent gives up
    after DOWNLOAD_TIMEOUT_S instead of hanging (a loopback server; no network needed)."""
    import socket
    import threading

    monkeypatch.undo()  # this test's own loopback connection is allowed
    monkeypatch.delenv("TFOVP_DATA_DIR", raising=False)
    monkeypatch.setenv("TFOVP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(files, "DOWNLOAD_TIMEOUT_S", 0.5)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    url = f"http://127.0.0.1:{server.getsockname()[1]}/abalone.data"
    spec = files.DataFile("abalone/abalone.data", abalone.DATA_FILE.sha256, urls=(url,))
    outcome = []

    def fetch():
        try:
            files.locate([spec], tmp_path / "nothing")
        except files.DatasetNotFoundError as error:
            outcome.append(str(error))

    worker = threading.Thread(target=fetch, daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(timeout=10)
    server.close()
    assert not worker.is_alive() and time.monotonic() - started < 5
    assert outcome and "timed out" in outcome[0]


def test_interrupted_download_leaves_nothing(tmp_path, monkeypatch, no_data_env):
    def broken(url, handle):
        handle.write(b"M,0.455,0.365")  # the first bytes, then the connection drops
        raise OSError("connection reset")

    monkeypatch.setattr(files, "_fetch", broken)
    with pytest.raises(files.DatasetNotFoundError, match="connection reset"):
        datasets.load_abalone(data_dir=tmp_path / "nothing")
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))


def test_download_verifies_then_installs(data_dir, tmp_path, monkeypatch, no_data_env):
    content = (pathlib.Path(data_dir) / "abalone" / "abalone.data").read_bytes()
    calls = []

    def serve(url, handle):
        calls.append(url)
        handle.write(content)

    monkeypatch.setattr(files, "_fetch", serve)
    x, _ = datasets.load_abalone(data_dir=tmp_path / "nothing")
    assert x.shape == (4177, 10) and calls == [abalone.DATA_FILE.urls[0]]
    assert (tmp_path / "cache" / "abalone" / "abalone.data").read_bytes() == content
    datasets.load_abalone(data_dir=tmp_path / "nothing")  # now from the cache
    assert len(calls) == 1


def test_download_from_nested_archive(tmp_path, monkeypatch):
    payload = b"hello batch"
    spec = files.DataFile(
        "gas-sensor-drift/batch4.dat",
        __import__("hashlib").sha256(payload).hexdigest(),
        archive_urls=("https://example.invalid/all.zip",),
    )
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("Dataset/batch4.dat", payload)
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as archive:
        archive.writestr("Dataset.zip", inner.getvalue())
    monkeypatch.setattr(files, "_fetch", lambda url, handle: handle.write(outer.getvalue()))
    (path,) = files.download([spec])
    assert path.read_bytes() == payload and path.parent.name == "gas-sensor-drift"


# ---------------------------------------------------------------- preprocessing, report, TFDS


def test_preprocessing_options():
    x = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    y = np.array([2.0, 4.0, 10.0])
    xs, ys = preprocess(x, y, "standardize")
    np.testing.assert_allclose(xs[:, 0], [-np.sqrt(1.5), 0, np.sqrt(1.5)])
    np.testing.assert_array_equal(xs[:, 1], 0)  # a constant column is only centred
    np.testing.assert_allclose([ys.mean(), ys.std()], [0, 1], atol=1e-12)
    _, ys = preprocess(x, y, "standardize-minmax")
    np.testing.assert_allclose(ys, [0, 0.25, 1])
    xs, ys = preprocess(x, y, "maxabs")
    np.testing.assert_allclose(xs[:, 0], [0.2, 0.6, 1])
    np.testing.assert_allclose(ys, [0.2, 0.4, 1])
    xs, _ = preprocess(x, y, ("minmax", "none"), dtype="float32")
    assert xs.dtype == np.float32 and xs[:, 0].tolist() == [0, 0.5, 1]
    np.testing.assert_array_equal(scale(x, "none"), x)
    with pytest.raises(ValueError, match="preprocessing='zscore'"):
        preprocess(x, y, "zscore")
    # Composite specs: per-example unit norm, a centred target, log1p before scaling.
    xs, ys = preprocess(x, y, "unit-norm:center:log1p")
    np.testing.assert_allclose(np.linalg.norm(xs, axis=1), 1.0)
    np.testing.assert_allclose(ys, np.log1p(y) - np.log1p(y).mean())
    _, ys = preprocess(x, y, "none:none")
    np.testing.assert_array_equal(ys, y)
    with pytest.raises(ValueError, match="preprocessing target"):
        preprocess(x, y, "standardize:unit-norm")
    with pytest.raises(ValueError, match="preprocessing transform"):
        preprocess(x, y, "standardize:center:sqrt")
    with pytest.raises(ValueError, match="dataset='iris'"):
        datasets.load_regression("iris")


def test_report_command(data_dir, tmp_path, capsys, monkeypatch):
    assert report.main(["--data-dir", data_dir, "--no-download"]) == 0
    out = capsys.readouterr().out
    assert "ethanol" in out and "(2565, 128)" in out and "MISSING (optional)" in out
    monkeypatch.delenv("TFOVP_DATA_DIR", raising=False)
    (tmp_path / "empty").mkdir()
    assert report.main(["--data-dir", str(tmp_path / "empty"), "--no-download"]) == 1


def test_tfds_builder_reads_manual_dir(data_dir, tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    from tfovp.datasets import tfds_builders  # noqa: F401  (registers the builders)

    builder = tfds.builder("tfovp_abalone", data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=data_dir))
    x, y = tfds.as_numpy(builder.as_dataset(split="train", batch_size=-1, as_supervised=True))
    expected_x, expected_y = datasets.load_abalone(data_dir=data_dir, download=False)
    np.testing.assert_array_equal(x, expected_x)
    np.testing.assert_array_equal(y, expected_y)
