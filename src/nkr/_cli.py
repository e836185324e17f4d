"""The ``nkr`` command line: an edge that parses input, calls the engine and renders."""

from __future__ import annotations

import datetime as dt
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from nkr._assessment import Assessment, RecommendationResult, RecStatus
from nkr._errors import InputError
from nkr._guideline import Lang, load_guideline
from nkr._package import GuidelinePackage, registry
from nkr._render import (
    assessment_summary,
    fact_lines,
    guide_json,
    guide_markdown,
    legend_lines,
    scope_lines,
)
from nkr._texts import generic_texts, t

app = typer.Typer(
    name="nkr",
    help="Clinical decision support for Danish national clinical guidelines (NKR).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class LangOpt(StrEnum):
    da = "da"
    en = "en"


class EvaluateFormat(StrEnum):
    text = "text"
    json = "json"
    summary = "summary"


class GuideFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


STATUS_STYLE = {
    RecStatus.APPLIES: "green",
    RecStatus.CAUTION: "bold yellow",
    RecStatus.DUE: "bold magenta",
    RecStatus.OVERDUE: "bold red",
    RecStatus.DONE: "cyan",
    RecStatus.NOT_APPLICABLE: "dim",
}


def _status_style(r: RecommendationResult) -> str:
    # A recommendation against that merely applies is no go-ahead: not shown in green.
    if r.applies_against:
        return "default"
    return STATUS_STYLE[r.status]


LangOption = Annotated[LangOpt, typer.Option("--lang", help="Language of the output.")]
GuidelineOption = Annotated[
    str | None,
    typer.Option(
        "--guideline",
        help="Guideline id (see 'nkr guidelines'; default: NKR_GUIDELINE, or the only one).",
    ),
]


def _package(guideline_id: str | None) -> GuidelinePackage:
    return registry().get(guideline_id)


@app.command("guidelines")
def guidelines_command(
    lang: LangOption = LangOpt.da,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """List the installed guidelines: id, version, status and title."""
    language: Lang = lang.value
    found = registry()
    rows = [
        {
            "id": p.id,
            "slug": p.slug,
            "version": p.content.version,
            "in_force": p.content.status.in_force,
            "title": p.content.title(language),
            "default": p.id == found.default_id,
        }
        for p in found.packages
    ]
    if as_json:
        _print_json(rows)
        return
    console = _console()
    for row in rows:
        status = t("in-force" if row["in_force"] else "not-in-force", language)
        mark = " *" if row["default"] else ""
        console.print(
            Text.assemble((f"{row['id']}{mark}", "bold"), f"  {row['version']}  {status}")
        )
        console.print(f"  {row['title']}")


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def _print_json(data: object) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


@app.command("guide")
def guide_command(
    lang: LangOption = LangOpt.da,
    fmt: Annotated[
        GuideFormat, typer.Option("--format", help="text, markdown or json.")
    ] = GuideFormat.text,
    guideline_id: GuidelineOption = None,
) -> None:
    """Print the quick guide: status, sections, recommendations with grades, legend."""
    g = _package(guideline_id).content
    language: Lang = lang.value
    if fmt is GuideFormat.json:
        _print_json(guide_json(g, language))
        return
    if fmt is GuideFormat.markdown:
        sys.stdout.write(guide_markdown(g, language))
        return
    console = _console()
    console.print(Text(g.title(language), style="bold"))
    console.print(f"{g.publisher}, {t('version', language)} {g.version} ({g.published})")
    console.print(Text(g.status.text(language), style="bold red"))
    for line in scope_lines(g, language):
        console.print(line)
    if g.about:
        console.print(Text(t("about-heading", language), style="bold"))
    for paragraph in g.about:
        console.print(paragraph(language))
    for section in g.sections:
        console.print()
        console.print(Text(section.heading(language), style="bold underline"))
        for rec in g.in_section(section.id):
            console.print(Text.assemble((f"{rec.symbols:<5} ", "bold"), rec.wording(language)))
    console.print()
    console.print(Text(t("legend", language), style="bold underline"))
    for line in legend_lines(g, language):
        console.print(line)


def _parse_date(value: str | None, option: str) -> dt.date:
    if value is None:
        from nkr._settings import Settings

        return Settings.from_env().today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{option}: '{value}' is not a valid date (expected YYYY-MM-DD)") from None


def _read_case_file(path: Path) -> bytes:
    if str(path) == "-":
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a JSON case file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None


@app.command("evaluate")
def evaluate_command(
    case_file: Annotated[
        Path, typer.Argument(help="Patient case (JSON, format version 1); - reads standard input.")
    ],
    date: Annotated[
        str | None, typer.Option("--date", help="Assessment date, YYYY-MM-DD (default: today).")
    ] = None,
    lang: LangOption = LangOpt.da,
    fmt: Annotated[
        EvaluateFormat,
        typer.Option(
            "--format", help="text, json, or summary (a few plain lines for the patient record)."
        ),
    ] = EvaluateFormat.text,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    guideline_id: GuidelineOption = None,
) -> None:
    """Assess a patient case against the guideline."""
    package = _package(guideline_id)
    on = _parse_date(date, "--date")
    raw = _read_case_file(case_file)
    if not raw.strip():
        raise InputError(f"{case_file}: empty file, expected a JSON object")
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{case_file}: not valid JSON: {exc}") from None
    try:
        case = package.parse_case(raw)
    except InputError as exc:
        raise InputError(f"{case_file}: {exc}") from None
    assessment = package.evaluate(case, on)
    if as_json or fmt is EvaluateFormat.json:
        _print_json(assessment.to_json(lang.value))
    elif fmt is EvaluateFormat.summary:
        sys.stdout.write(assessment_summary(assessment, lang.value))
    else:
        _print_assessment(assessment, lang.value)


def _print_assessment(a: Assessment, lang: Lang) -> None:
    g = a.guideline
    console = _console()
    console.print(Text(g.short_title(lang), style="bold"))
    console.print(Text(g.status.text(lang), style="red"))
    console.print("   ".join(fact_lines(a, lang)))
    if a.in_scope:
        console.print(Text(t("in-scope", lang), style="bold green"))
    else:
        reasons = "; ".join(r.text(g, lang) for r in a.scope_reasons)
        console.print(Text(f"{t('out-of-scope', lang)}: {reasons}", style="bold yellow"))
    for notice in a.notices:
        console.print()
        console.print(Text(a.text(notice.title, lang), style="bold white on red"))
        console.print(Text(a.text(notice.text, lang), style="bold red"))
    for deadline in a.deadlines:
        console.print(a.text(deadline.text, lang))
    table = Table(show_lines=True, expand=False)
    table.add_column(t("recommendation", lang), overflow="fold", ratio=3)
    table.add_column(t("grade", lang), no_wrap=True)
    table.add_column(t("status", lang), no_wrap=True)
    table.add_column(t("reason", lang), overflow="fold", ratio=2)
    for r in a.results:
        table.add_row(
            Text.assemble((r.recommendation.id, "bold"), "\n", r.recommendation.wording(lang)),
            r.recommendation.symbols,
            Text(t(f"status-{r.status.value}", lang), style=_status_style(r)),
            r.reason.text(g, lang),
        )
    console.print(table)
    console.print(Text(t("assumptions", lang), style="bold"))
    for assumption in g.assumptions:
        console.print(f"- {assumption.text(lang)}")


@app.command("validate")
def validate_command(
    file: Annotated[Path, typer.Argument(help="Guideline data file (TOML).")],
) -> None:
    """Check a guideline data file against the schema, and, when its id is an installed
    guideline, against that guideline's rules (one rule per recommendation)."""
    g = load_guideline(file)
    installed = next((p for p in registry().packages if p.id == g.id), None)
    checked = ""
    if installed is not None:
        ids, ruled = set(g.by_id), set(installed.content.by_id)
        if ids != ruled:
            raise InputError(
                f"{file}: recommendations differ from the rules of the installed guideline "
                f"'{g.id}': without a rule: {sorted(ids - ruled)}, rules without a "
                f"recommendation: {sorted(ruled - ids)}"
            )
        checked = "; its installed rules cover every recommendation"
    sys.stdout.write(
        f"{file}: valid ({g.id} version {g.version}, {len(g.sections)} sections, "
        f"{len(g.recommendations)} recommendations){checked}\n"
    )


feedback_app = typer.Typer(
    name="feedback",
    help="Card feedback from the CDS Hooks service.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(feedback_app)


@feedback_app.command("report")
def feedback_report_command(
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Data folder (default: NKR_DATA_DIR, else ./data)."),
    ] = None,
    lang: LangOption = LangOpt.da,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Per card topic: how often cards were shown, accepted and overridden, and why."""
    from nkr._settings import Settings
    from nkr.cdshooks import DB_NAME, report
    from nkr.cdshooks._feedback import reason_display, topic_label

    folder = data_dir if data_dir is not None else Settings.from_env().data_dir
    rows = report(folder / DB_NAME)
    language: Lang = lang.value
    if as_json:
        _print_json(
            [
                {
                    "topic": r.topic,
                    "label": topic_label(r.topic, language),
                    "shown": r.shown,
                    "accepted": r.accepted,
                    "overridden": r.overridden,
                    "override_reasons": [
                        {
                            "code": code,
                            "display": reason_display(code, display, language),
                            "count": n,
                        }
                        for code, display, n in r.reasons
                    ],
                }
                for r in rows
            ]
        )
        return
    tx = generic_texts()
    console = _console()
    if not rows:
        console.print(tx("report.empty", language))
        return
    table = Table(show_lines=True, expand=False)
    # The topic: its name in the report's language, and its code below it. The column is as
    # wide as the longest code, so that no code is cut or folded; the name wraps within it.
    codes = [r.topic or "" for r in rows]
    table.add_column(tx("report.topic", language), width=max(len(c) for c in codes) or None)
    for key in ("report.shown", "report.accepted", "report.overridden"):
        table.add_column(tx(key, language), justify="right", no_wrap=True)
    table.add_column(tx("report.reasons", language), overflow="fold")
    for r in rows:
        topic = Text(topic_label(r.topic, language))
        if r.topic is not None:
            topic.append(f"\n{r.topic}", style="dim")
        reasons = "\n".join(
            f"{n} × {reason_display(code, display, language)}" for code, display, n in r.reasons
        )
        table.add_row(topic, str(r.shown), str(r.accepted), str(r.overridden), reasons)
    console.print(table)


@app.command("synth")
def synth_command(
    patients: Annotated[int, typer.Option("--patients", help="Number of patients.")],
    out: Annotated[Path, typer.Option("--out", help="New (or empty) folder for the export.")],
    seed: Annotated[
        int, typer.Option("--seed", help="Seed: the same one gives the same files.")
    ] = 1,
    guideline: GuidelineOption = None,
    problems: Annotated[
        bool, typer.Option("--problems", help="Add malformed lines and bad resources.")
    ] = False,
    gzip: Annotated[bool, typer.Option("--gzip", help="Write .ndjson.gz files.")] = False,
) -> None:
    """Write a synthetic FHIR Bulk Data export with the ground truth an audit must find."""
    from nkr._synth import synthesize

    package = _package(guideline)
    written = synthesize(
        package.synthesis, package.id, patients, out, seed=seed, problems=problems, compress=gzip
    )
    sys.stdout.write(
        f"{written.truth['patients']} patients, {written.resources} resources in "
        f"{len(written.counts)} files: {out}\n"
    )


class AuditEngine(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


@app.command("audit")
def audit_command(
    source: Annotated[
        Path, typer.Argument(help="A folder of .ndjson/.ndjson.gz files or a Bulk Data manifest.")
    ],
    date_from: Annotated[
        str | None, typer.Option("--from", help="First episode start, YYYY-MM-DD.")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", help="Last episode start, YYYY-MM-DD.")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for the outputs.")] = Path("audit"),
    engine: Annotated[
        AuditEngine, typer.Option("--engine", help="duckdb (default) or spark.")
    ] = AuditEngine.duckdb,
    guideline: GuidelineOption = None,
    min_cell: Annotated[
        int | None,
        typer.Option("--min-cell", help="Hide counts below this (default NKR_AUDIT_MIN_CELL, 5)."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Worker processes (default: one per core).")
    ] = None,
) -> None:
    """Measure the guideline's indicators over a FHIR Bulk Data export."""
    from nkr.audit._command import audit

    audit(
        source,
        _package(guideline),
        start=None if date_from is None else _parse_date(date_from, "--from"),
        end=None if date_to is None else _parse_date(date_to, "--to"),
        out=out,
        engine=engine.value,
        min_cell=min_cell,
        workers=workers,
        console=_console(),
    )


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
    http: Annotated[
        str, typer.Option("--http", help="HTTP implementation: httptools (default) or h11.")
    ] = "httptools",
) -> None:
    """Start the web app, the CDS Hooks service and the FHIR endpoints."""
    import uvicorn

    from nkr._http import PROTOCOLS
    from nkr._settings import Settings

    settings = Settings.from_env()  # fail fast, with one line, on a bad NKR_* setting
    if http not in PROTOCOLS:
        raise InputError(f"--http: '{http}' is not one of {', '.join(PROTOCOLS)}")
    if workers > 1 and settings.metrics_token:
        # Each worker counts in its own files there; /metrics sums them (nkr._metrics).
        from nkr._metrics import prepare_multiprocess

        prepare_multiprocess(settings.data_dir)
    uvicorn.run(
        "nkr._app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # uvicorn's protocols with a limit on the request head (431 past NKR_MAX_HEADER_BYTES,
        # before anything parses it); h11's own buffer limit set to the same.
        http=PROTOCOLS[http],
        h11_max_incomplete_event_size=settings.max_header_bytes,
        # X-Forwarded-Proto/-For only from NKR_TRUSTED_PROXIES; uvicorn would otherwise trust
        # them from 127.0.0.1, so that any local client could choose the scheme of card links.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies) or None,
        loop="uvloop",
        access_log=False,
        log_level="info",
    )


def main(argv: list[str] | None = None) -> int:
    """Run the command line; user errors print one line and exit 2, never a traceback."""
    try:
        app(args=argv, standalone_mode=False)
    except InputError as exc:
        sys.stderr.write(f"nkr: error: {exc}\n")
        return 2
    except typer.TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.stdout.write(exc.format_message() + "\n")
            return 0
        message = " ".join(exc.format_message().split())
        sys.stderr.write(f"nkr: error: {message}\n")
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        sys.stderr.write("nkr: aborted\n")
        return 130
    except KeyboardInterrupt:
        return 130
    return 0


def run() -> None:
    sys.exit(main())
