"""The gallery file on disk: the errors of the gallery package, owner-only files and folders, the header check.

:mod:`gallery.schema` stands on this module (and re-exports its names); nothing here knows the tables.
"""
from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

logger = logging.getLogger(__name__)

#: The file mode of a gallery: owner read/write only.
FILE_MODE = 0o600
#: The mode of the folders made for galleries: owner only.
DIR_MODE = 0o700
_SQLITE_MAGIC = b"SQLite format 3\x00"


class GalleryError(Exception):
    """A gallery cannot be opened or changed as asked."""


class GalleryCorruptError(GalleryError):
    """The file is not a readable facetrack gallery."""


class ModelMismatchError(GalleryError):
    """The gallery was built with another embedding model."""


class GalleryLockedError(GalleryError):
    """Another process holds the gallery's lock for longer than the timeout."""


def make_private_dir(folder: Path) -> None:
    """Create ``folder`` and its missing parents with :data:`DIR_MODE` (existing ones are left alone)."""
    missing = []
    current = Path(folder)
    while not current.exists():
        missing.append(current)
        current = current.parent
    for item in reversed(missing):
        try:
            item.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        except OSError as exc:
            raise GalleryError(f"cannot create folder {item} for the gallery: {exc.strerror}") from exc
        os.chmod(item, DIR_MODE)


def make_private(path: Path, mode: int = FILE_MODE) -> None:
    """Set ``path`` to ``mode`` when it allows more (a file made by someone else's umask)."""
    try:
        if stat.S_IMODE(os.stat(path).st_mode) & ~mode:
            os.chmod(path, mode)
            logger.warning("%s was readable by others: set to mode %o (it holds face data)", path, mode)
    except OSError as exc:
        logger.warning("cannot make %s private (%s): it holds face data", path, exc.strerror)


def create_file(path: Path) -> None:
    """Create an empty gallery file with :data:`FILE_MODE` (nothing when another process just did)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return  # another process created it just now; it is opened as it is
    except OSError as exc:
        raise GalleryError(f"cannot create gallery {path}: {exc.strerror}") from exc
    os.close(fd)
    os.chmod(path, FILE_MODE)  # in case of an unusual umask or ACL default


def check_header(path: Path) -> None:
    """Refuse a non-empty file that does not start with SQLite's magic bytes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise GalleryError(f"cannot read gallery {path}: {exc.strerror}") from exc
    if head and head != _SQLITE_MAGIC:
        raise GalleryCorruptError(
            f"{path} is not a facetrack gallery (not an SQLite database file); "
            "restore it from a backup or enroll into a new file"
        )


def file_mode(path: str | os.PathLike) -> int:
    """The permission bits of ``path`` (e.g. ``0o600``)."""
    return stat.S_IMODE(os.stat(path).st_mode)
