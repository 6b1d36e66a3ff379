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


def atomic_save(path, save):
    """Write a file whose writer insists on a file name, e.g. `model.save` (a `.keras`
    name): `save(temporary_path)` writes a temporary file beside `path` with the same
    suffix, then it is renamed onto `path`; on any error (or a kill) `path` is untouched."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".partial{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        os.remove(temporary)  # some writers refuse to overwrite; the name stays reserved by its randomness
        save(temporary)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def output_problem(path, folder=False):
    """Why `path` cannot be written (a folder with `folder`, else a file), or None: the
    check a command runs on every output path before it loads data or trains. A folder
    (or a file's folder) that does not exist yet is created, as the writers would."""
    path = pathlib.Path(path)
    target = path if folder else path.parent
    if folder and path.exists() and not path.is_dir():
        return "is a file, not a folder"
    if not folder and path.is_dir():
        return "is a folder, not a file"
    try:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target, prefix=".write-test-"):
            pass
    except OSError as error:
        return f"cannot write there ({error.strerror or error})"
    if not folder and path.exists() and not os.access(path, os.W_OK):
        return "cannot be replaced (no write permission)"
    return None


LOCK_WAIT_NOTICE_S = 5.0  # a lock held longer than this is reported once, then waited for


@contextlib.contextmanager
def locked(path, notice=None):
    """Hold an exclusive lock on `path` (a `<name>.lock` file beside it) for a
    read-modify-write of a shared output (the lock file: `.<name>.lock`, hidden beside it).
    The operating system releases it when its
    holder exits or is killed, so a crashed run never blocks the next one; while another
    live process holds it, `notice(text)` (default: stderr) says so once after
    LOCK_WAIT_NOTICE_S seconds and the lock is waited for."""
    import fcntl
    import sys
    import time

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a+") as handle:
        started, told = time.monotonic(), False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told and time.monotonic() - started >= LOCK_WAIT_NOTICE_S:
                    text = f"waiting for {path}: another run is updating it (lock file {handle.name})"
                    (notice or (lambda t: print(t, file=sys.stderr, flush=True)))(text)
                    told = True
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
