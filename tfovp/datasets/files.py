"""Finding, verifying and downloading dataset files.

Search order for a file `relative` (e.g. "abalone/abalone.data"): an explicit
`data_dir`, then $TFOVP_DATA_DIR, then the cache ($TFOVP_CACHE_DIR, default
~/.cache/tfovp); if none has it and `download` is true, the file is downloaded into the
cache. Every file is checked against its SHA-256 before use. Downloads go to a
temporary name and are renamed only after verification, so an interrupted download
never passes as complete.
"""

import dataclasses
import hashlib
import io
import os
import pathlib
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile

from tfovp.files import atomic_writer

DATA_DIR_ENV = "TFOVP_DATA_DIR"
CACHE_DIR_ENV = "TFOVP_CACHE_DIR"
DOWNLOAD_TIMEOUT_S = 5.0


class DatasetError(Exception):
    """Base class of dataset errors."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A data file is in none of the searched places and could not be downloaded."""


class ChecksumError(DatasetError, ValueError):
    """A data file's SHA-256 differs from the published one."""


class DataFormatError(DatasetError, ValueError):
    """A data file does not have the expected format or size."""


@dataclasses.dataclass(frozen=True)
class DataFile:
    """One file of a dataset: where it lives relative to a data folder, its SHA-256 and
    where to download it (`urls`, or `archive_urls`: zips that contain it)."""

    relative: str
    sha256: str
    urls: tuple = ()
    archive_urls: tuple = ()

    @property
    def name(self):
        return pathlib.PurePosixPath(self.relative).name


def cache_dir():
    """$TFOVP_CACHE_DIR or ~/.cache/tfovp."""
    return pathlib.Path(os.environ.get(CACHE_DIR_ENV) or pathlib.Path.home() / ".cache" / "tfovp")


def search_dirs(data_dir=None):
    """The folders searched, in order: data_dir, $TFOVP_DATA_DIR, the cache. A `data_dir`
    given but missing is an error, never silently skipped."""
    dirs = []
    if data_dir is not None:
        if not pathlib.Path(data_dir).expanduser().is_dir():
            raise ValueError(f"`data_dir` is not a folder. Received: data_dir={str(data_dir)!r}")
        dirs.append(pathlib.Path(data_dir).expanduser())
    if os.environ.get(DATA_DIR_ENV):
        dirs.append(pathlib.Path(os.environ[DATA_DIR_ENV]).expanduser())
    dirs.append(cache_dir())
    return dirs


def sha256_of(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path, expected):
    """Raise `ChecksumError` naming the file unless its SHA-256 is `expected`."""
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumError(
            f"{path}: SHA-256 mismatch (expected {expected}, actual {actual}). The file is "
            "corrupt or not the published version; delete it to download it again."
        )
    return path


def find(spec, data_dir=None):
    """The first existing copy of `spec` in `search_dirs(data_dir)`, or None."""
    for folder in search_dirs(data_dir):
        path = folder / spec.relative
        if path.is_file():
            return path
    return None


def not_found_message(specs, data_dir=None, reason=None):
    specs = list(specs)
    places = "\n".join(f"  - {folder}" for folder in search_dirs(data_dir))
    urls = sorted({u for s in specs for u in s.urls + s.archive_urls})
    lines = [
        f"Missing dataset file(s): {', '.join(s.relative for s in specs)}.",
        f"Searched:\n{places}",
        f"Download URL(s): {', '.join(urls) if urls else 'none known'}",
        f"To work offline, put the files under a folder (keeping the sub-folders shown) and "
        f"set {DATA_DIR_ENV}=/that/folder, or pass data_dir= / --data-dir.",
    ]
    if reason:
        lines.insert(1, f"Download failed: {reason}")
    return "\n".join(lines)


def _progress(label, total):
    state = {"done": 0}

    def update(size):
        state["done"] += size
        if total:
            percent = 100.0 * state["done"] / total
            sys.stderr.write(f"\r{label}: {state['done'] / 1e6:7.1f} / {total / 1e6:.1f} MB ({percent:5.1f}%)")
        else:
            sys.stderr.write(f"\r{label}: {state['done'] / 1e6:7.1f} MB")
        sys.stderr.flush()

    return update


def _fetch(url, handle):
    """Stream `url` into an open binary file, with a progress line on stderr."""
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        total = int(response.headers.get("Content-Length") or 0)
        update = _progress(f"Downloading {url}", total)
        for block in iter(lambda: response.read(1 << 16), b""):
            handle.write(block)
            update(len(block))
    sys.stderr.write("\n")


def _install(source_bytes_or_url, spec, target_dir):
    """Write to a temporary name in `target_dir`, verify, then rename into place."""
    target = target_dir / spec.relative
    with atomic_writer(target, "wb", check=lambda temporary: verify(temporary, spec.sha256)) as handle:
        if isinstance(source_bytes_or_url, bytes):
            handle.write(source_bytes_or_url)
        else:
            _fetch(source_bytes_or_url, handle)
    return target


def _members(archive_bytes):
    """Yield (basename, bytes) of every file in a zip, descending into nested zips."""
    with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            data = archive.read(info)
            name = pathlib.PurePosixPath(info.filename).name
            if name.endswith(".zip"):
                yield from _members(data)
            else:
                yield name, data


def _download(specs, target_dir):
    """Try direct URLs, then archives; return ({relative: path}, [error messages])."""
    paths, errors = {}, []
    for spec in specs:
        for url in spec.urls:
            try:
                paths[spec.relative] = _install(url, spec, target_dir)
                break
            except (OSError, urllib.error.URLError, ChecksumError) as error:
                errors.append(f"{url}: {error}")
    remaining = [s for s in specs if s.relative not in paths]
    for url in sorted({u for s in remaining for u in s.archive_urls}):
        wanted = {s.name: s for s in remaining if url in s.archive_urls and s.relative not in paths}
        if not wanted:
            continue
        try:
            with tempfile.TemporaryFile() as handle:
                _fetch(url, handle)
                handle.seek(0)
                archive = handle.read()
            for name, data in _members(archive):
                if name in wanted and wanted[name].relative not in paths:
                    paths[wanted[name].relative] = _install(data, wanted[name], target_dir)
        except (OSError, urllib.error.URLError, zipfile.BadZipFile, ChecksumError) as error:
            errors.append(f"{url}: {error}")
    return paths, errors


def download(specs, target_dir=None, data_dir=None):
    """Download `specs` into `target_dir` (default: the cache); return their paths.

    Raises `DatasetNotFoundError` naming the places searched, the URLs and the reason.
    """
    specs = list(specs)
    paths, errors = _download(specs, pathlib.Path(target_dir or cache_dir()))
    missing = [s for s in specs if s.relative not in paths]
    if missing:
        reason = "; ".join(errors) or "the files were not in the downloaded archive"
        raise DatasetNotFoundError(not_found_message(missing, data_dir, reason=reason))
    return [paths[s.relative] for s in specs]


def locate(specs, data_dir=None, download_missing=True):
    """Paths of verified copies of every spec (searching, then downloading the rest)."""
    specs = list(specs)
    found = {s.relative: find(s, data_dir) for s in specs}
    missing = [s for s in specs if found[s.relative] is None]
    if missing and not download_missing:
        raise DatasetNotFoundError(not_found_message(missing, data_dir))
    if missing:
        for spec, path in zip(missing, download(missing, data_dir=data_dir)):
            found[spec.relative] = path
    return [verify(found[s.relative], s.sha256) for s in specs]
