"""Finished runs kept on disk so that an interrupted study loses nothing: one JSON file
per run, written atomically (temporary file, fsync, rename).

A stored file that cannot be read back (truncated, edited, another layout) is named in
a warning, moved aside to `<name>.corrupt` and treated as missing, so the run is done
again instead of failing after the training.
"""

import json
import pathlib
import warnings

from tfovp.files import atomic_write_text


class StudyError(Exception):
    """An error of the study layer that stops a run with a one-line message."""


class CorruptFileError(StudyError):
    """A shared output file cannot be read back, so it cannot be updated safely."""


class CorruptRecordWarning(UserWarning):
    """A stored run could not be read back and will be recomputed."""


class RecordStore:
    """Runs of one kind as `<folder>/<key>.json`.

    Args:
        folder: where the files live (created on the first `put`).
        decode: dict -> record (e.g. `CurveFamily.from_json`); it may raise on bad data.
        encode: record -> JSON-ready dict (default: `record.to_json()`).
    """

    def __init__(self, folder, decode, encode=None):
        self.folder = pathlib.Path(folder)
        self.decode = decode
        self.encode = encode or (lambda record: record.to_json())

    def path(self, key):
        return self.folder / f"{key}.json"

    def get(self, key):
        """The stored record, or None if there is none or it cannot be read back."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            return self.decode(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as error:  # JSONDecodeError is a ValueError
            aside = path.with_name(path.name + ".corrupt")
            path.replace(aside)
            warnings.warn(
                f"stored run {path} cannot be read back ({type(error).__name__}: {error}); "
                f"moved to {aside.name}, it will be recomputed",
                CorruptRecordWarning,
                stacklevel=2,
            )
            return None

    def put(self, key, record):
        return self.put_encoded(key, self.encode(record))

    def put_encoded(self, key, data):
        """Store a record already in its JSON-ready form (`encode(record)`)."""
        atomic_write_text(self.path(key), json.dumps(data))
        return self.path(key)
