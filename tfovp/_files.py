"""Atomic file writes: a reader sees either the old complete file or the new complete
file, never a truncated one (temporary file in the same folder, fsync, rename)."""

import contextlib
import os
import pathlib
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_writer(path, mode="w", check=None, **open_kwargs):
    """Open a temporary file beside `path` for writing; when the block ends without an
    exception, flush it to disk, run `check(temporary_path)` if given (it may raise to
    refuse the file), and rename it onto `path`. On any error `path` is left as it was.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual mode
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if check is not None:
            check(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def atomic_write_text(path, text, encoding="utf-8"):
    """Write `text` to `path` atomically."""
    with atomic_writer(path, "w", encoding=encoding, newline="") as handle:
        handle.write(text)
    return pathlib.Path(path)


def atomic_write_bytes(path, data):
    """Write `data` to `path` atomically."""
    with atomic_writer(path, "wb") as handle:
        handle.write(data)
    return pathlib.Path(path)
