"""Atomic file writes: readers (and resumed jobs) never see a partial file; and the check,
before any work, that an output place can take them."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stsanet.errors import OutputPlaceError

# Temporary files are readable by their owner only; finished outputs get the usual mode.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds.

    The temporary file lives in the target's folder so the final ``os.replace`` is a rename on
    one file system; on any failure it is removed, so an interrupted job leaves no debris that a
    resumed one could mistake for a finished output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The name is chosen before the file exists and the file is created inside the try: an
    # interrupt (Ctrl-C, SIGTERM: raised between any two bytecodes) can come right after the
    # creation, and the finally clause must know the name then.
    temporary = path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}"
    try:
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        yield temporary
        os.chmod(temporary, _FILE_MODE)
        os.replace(temporary, path)
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8", newline="")


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


# ---------------------------------------------------------------------------------------------
# output places, checked before any work: a run that cannot write its results finds out first
# ---------------------------------------------------------------------------------------------

def _can_create_in(folder: Path) -> str | None:
    """None if a file can be created in ``folder`` (tried for real: permission bits do not tell
    root, a read-only mount or a pseudo file system apart), else why not."""
    probe = folder / f".stsanet-write-check.{secrets.token_hex(4)}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as error:
        return error.strerror or type(error).__name__
    finally:
        if os.path.lexists(probe):
            os.unlink(probe)
    return None


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(path.anchor or ".")


def check_folder_place(path: str | os.PathLike, key: str) -> Path:
    """``path`` can hold outputs: a writable folder, or one that can be created (its nearest
    existing ancestor is a writable folder). Nothing is created. Raises OutputPlaceError
    naming ``key``."""
    path = Path(path).expanduser()
    existing = _nearest_existing(path.absolute())
    if not existing.is_dir():
        where = "is a file" if existing == path.absolute() else f"has a file in its path ({existing})"
        raise OutputPlaceError(f"{key}={path} {where}, where a folder is expected; choose a "
                               f"folder path")
    problem = _can_create_in(existing)
    if problem is not None:
        raise OutputPlaceError(f"{key}={path}: cannot write in {existing} ({problem}); choose "
                               f"an output folder you can write to")
    return path


def check_file_place(path: str | os.PathLike, key: str) -> Path:
    """``path`` can be (re)written atomically: not a folder, and its folder is a writable one
    or can be created. Raises OutputPlaceError naming ``key``."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputPlaceError(f"{key}={path} is a folder, where a file is expected; give a "
                               f"file path such as {path / 'out'}")
    if not path.name:
        raise OutputPlaceError(f"{key}={path}: no file name; give a file path")
    existing = _nearest_existing(path.parent.absolute())
    if not existing.is_dir():
        raise OutputPlaceError(f"{key}={path} has a file in its path ({existing}), where a folder "
                               f"is expected; choose another path")
    problem = _can_create_in(existing)
    if problem is not None:
        raise OutputPlaceError(f"{key}={path}: cannot write in {existing} ({problem}); choose a "
                               f"place you can write to")
    return path
