"""The audit's SOURCE: a folder of ``.ndjson``/``.ndjson.gz`` files, or a Bulk Data manifest
(the ``$export`` completion JSON, whose ``output`` lists the files by URL: relative to the
manifest, or ``file:`` URLs)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

import orjson

from nkr._errors import InputError

SUFFIXES = (".ndjson", ".ndjson.gz")


def _readable(path: Path, shown: str) -> Path:
    if not path.is_file():
        raise InputError(f"{shown}: no such file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{shown}: cannot read (permission denied)")
    return path


def source_files(source: Path) -> tuple[Path, ...]:
    """The NDJSON files of ``source``, in a stable order; InputError (one line) when the
    source is missing, unreadable or has no NDJSON file."""
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    if source.is_dir():
        if not os.access(source, os.R_OK | os.X_OK):
            raise InputError(f"{source}: cannot read the folder (permission denied)")
        files = sorted(p for p in source.iterdir() if p.is_file() and p.name.endswith(SUFFIXES))
        if not files:
            raise InputError(f"{source}: no .ndjson or .ndjson.gz files in the folder")
        return tuple(_readable(p, str(p)) for p in files)
    return _manifest(source)


def _manifest(path: Path) -> tuple[Path, ...]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InputError(
            f"{path}: not a folder of NDJSON files nor a Bulk Data manifest (not JSON)"
        ) from None
    output = doc.get("output") if isinstance(doc, dict) else None
    if not isinstance(output, list):
        raise InputError(f"{path}: output", "expected the Bulk Data manifest's list of files")
    files = []
    for i, item in enumerate(output):
        url = item.get("url") if isinstance(item, dict) else None
        if not isinstance(url, str) or not url:
            raise InputError(f"{path}: output[{i}].url", "expected the URL of a file")
        parsed = urlparse(url)
        if parsed.scheme == "file":
            target = Path(unquote(parsed.path))
        elif parsed.scheme:
            raise InputError(
                f"{path}: output[{i}].url",
                f"a {parsed.scheme} URL: download the files first (only files are read)",
            )
        else:
            target = path.parent / unquote(parsed.path)
        files.append(_readable(target, f"{path}: output[{i}].url {target}"))
    if not files:
        raise InputError(f"{path}: output", "the manifest lists no files")
    return tuple(files)
