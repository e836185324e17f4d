"""The files an audit writes into ``--out``: ``figures.csv``, ``episodes.parquet`` (patient
references: never for sharing), ``summary.json``, and the report's ``report.html`` and
``measures.json`` (:mod:`nkr.audit._report`, :mod:`nkr.audit._measures`). Each is written to a
temporary file beside it and renamed: never half-written."""

from __future__ import annotations

import csv
import datetime as dt
import importlib
import io
import os
from pathlib import Path
from typing import Any, Final

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from nkr._errors import InputError
from nkr._files import write_atomically, write_atomically_with
from nkr._package import GuidelinePackage, registry
from nkr.audit._result import AuditResult
from nkr.audit._sql import COLUMNS

EPISODES_FILE: Final = "episodes.parquet"
# The Parquet file's key-value metadata: what it holds.
CONTAINS: Final = {b"nkr.contains": b"patient-references"}


def _text(path: Path, text: str | bytes) -> None:
    write_atomically(path, text.encode() if isinstance(text, str) else text)


def figures_csv(result: AuditResult) -> str:
    """One row per figure, columns in :class:`~nkr.audit._model.Figure`'s field order;
    a suppressed cell's counts, proportion and interval empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for f in result.figures:
        writer.writerow(
            [
                f.indicator,
                f.stratum,
                f.key,
                "" if f.numerator is None else f.numerator,
                "" if f.denominator is None else f.denominator,
                "" if f.proportion is None else repr(f.proportion),
                "" if f.low is None else repr(f.low),
                "" if f.high is None else repr(f.high),
                "true" if f.suppressed else "false",
            ]
        )
    return buffer.getvalue()


def episodes_table(result: AuditResult) -> pa.Table:
    """The episodes, with the metadata that says they identify patients."""
    meta = {
        **CONTAINS,
        b"nkr.note": b"one row per episode; patient references: not for sharing",
        b"nkr.guideline": result.guideline.encode(),
    }
    return result.episodes.replace_schema_metadata(meta)


def _out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out: {out} is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out: cannot create {out}: {exc.strerror}") from None
    if not os.access(out, os.W_OK):
        raise InputError(f"--out: cannot write into {out} (permission denied)")


def _report(
    result: AuditResult, package: GuidelinePackage, summary: dict[str, Any]
) -> dict[str, bytes]:
    """The report's files, where the report is part of this nkr."""
    try:
        report = importlib.import_module("nkr.audit._report")
        measures = importlib.import_module("nkr.audit._measures")
    except ImportError:
        return {}
    generated = dt.datetime.now(dt.UTC).replace(microsecond=0)
    html = report.render_report(
        package.content,
        result.indicators,
        result.figures,
        summary,
        period=result.period,
        organizations=result.tally.organizations,
        min_cell=result.min_cell,
        generated=generated,
    )
    bundle = measures.measures_bundle(
        package.content,
        result.indicators,
        result.figures,
        period=result.period,
        generated=generated,
        min_cell=result.min_cell,
    )
    return {
        "report.html": html.encode(),
        "measures.json": orjson.dumps(bundle, option=orjson.OPT_INDENT_2),
    }


def write_outputs(
    result: AuditResult, out: Path, package: GuidelinePackage | None = None
) -> list[Path]:
    """Write every output of ``result`` into ``out`` (made if missing); the paths written.
    ``package``: the guideline audited (None: the registry's of ``result.guideline``)."""
    if package is None:
        package = registry().get(result.guideline)
    _out_dir(out)
    summary = result.summary()
    written = []
    for name, data in _report(result, package, summary).items():
        _text(out / name, data)
        written.append(out / name)
    _text(out / "figures.csv", figures_csv(result))
    written.append(out / "figures.csv")
    table = episodes_table(result)
    write_atomically_with(out / EPISODES_FILE, lambda tmp: pq.write_table(table, tmp))
    written.append(out / EPISODES_FILE)
    _text(out / "summary.json", orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    written.append(out / "summary.json")
    return written
