"""Writing output files: whole or not at all, with the permissions of an ordinary new file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def umask() -> int:
    """The process's file mode creation mask."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically_with(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` fills a temporary file in the same folder, which is then renamed to
    ``path``: never a half-written file. The file gets the permissions an ordinary new file
    would (the temporary file's own are private)."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` to ``path``, whole or not at all (:func:`write_atomically_with`)."""

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    write_atomically_with(path, write)
