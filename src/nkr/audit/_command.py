"""``nkr audit``: the run with a progress bar (Rich, on standard error) and its summary."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from nkr._errors import InputError
from nkr._package import GuidelinePackage
from nkr.audit._outputs import write_outputs
from nkr.audit._run import DEFAULT_MIN_CELL, Engine, run_audit
from nkr.audit._source import source_files

MIN_CELL_SETTING = "NKR_AUDIT_MIN_CELL"


def min_cell_setting(given: int | None, env: Mapping[str, str] | None = None) -> int:
    """``--min-cell``, else ``NKR_AUDIT_MIN_CELL``, else 5."""
    if given is not None:
        if given < 0:
            raise InputError("--min-cell: expected a count of 0 or more")
        return given
    raw = (os.environ if env is None else env).get(MIN_CELL_SETTING)
    if raw is None:
        return DEFAULT_MIN_CELL
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise InputError(f"setting {MIN_CELL_SETTING}: expected a count of 0 or more")
    return value


def audit(
    source: Path,
    package: GuidelinePackage,
    *,
    start: dt.date | None,
    end: dt.date | None,
    out: Path,
    engine: Engine,
    min_cell: int | None,
    workers: int | None,
    console: Console,
) -> None:
    """Run the audit of ``source`` and write its outputs into ``out``."""
    cell = min_cell_setting(min_cell)
    if start is not None and end is not None and start > end:
        raise InputError("--from: after --to")
    files = source_files(source)  # a missing source: one line, before anything starts
    total = (
        None if any(f.name.endswith(".gz") for f in files) else sum(f.stat().st_size for f in files)
    )
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("judging patients", total=total)
        result = run_audit(
            source,
            package,
            engine=engine,
            start=start,
            end=end,
            min_cell=cell,
            workers=workers,
            progress=lambda done: bar.update(task, completed=done),
        )
        bar.update(task, description="writing outputs")
        write_outputs(result, out, package)
    s = result.summary()
    console.print(
        f"{s['files']} files, {s['resources']:,} resources, {s['patients']:,} patients "
        f"({s['patients_without_episode']:,} without an episode), {s['episodes']:,} episodes "
        f"({s['episodes_in_period']:,} in the period, {s['in_scope']:,} in scope) "
        f"in {s['seconds']:.1f} s ({s['engine']})",
        soft_wrap=True,
    )
    problems = s["problem_counts"]
    if any(problems.values()):
        listed = ", ".join(f"{n:,} {kind}" for kind, n in problems.items() if n)
        console.print(
            f"problems: {listed} (each with its file and line in summary.json)", soft_wrap=True
        )
        for p in s["problems"][:5]:
            console.print(f"  {p['file']}:{p['line']}: {p['kind']}: {p['problem']}", soft_wrap=True)
    console.print(f"outputs: {out}", soft_wrap=True)
