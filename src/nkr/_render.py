"""Renderings of the guideline and of an assessment shared by the interfaces."""

from __future__ import annotations

from typing import Any

from nkr._assessment import Assessment, Deadline, RecStatus
from nkr._guideline import GOOD_PRACTICE_SYMBOL, Guideline, Lang
from nkr._texts import t


def guide_json(g: Guideline, lang: Lang) -> dict[str, Any]:
    """The quick guide as a JSON-ready dict, texts in ``lang``."""
    return {
        "id": g.id,
        "title": g.title(lang),
        "publisher": g.publisher,
        "version": g.version,
        "published": g.published.isoformat(),
        "status": {
            "in_force": g.status.in_force,
            "since": g.status.since.isoformat() if g.status.since else None,
            "text": g.status.text(lang),
        },
        "source": {"url": g.source.url, "citation": g.source.citation(lang)},
        "scope": g.scope.text(lang),
        "scope_assumptions": [{"id": a.id, "text": a.text(lang)} for a in g.scope_assumptions],
        "about": [paragraph(lang) for paragraph in g.about],
        "lang": lang,
        "sections": [
            {
                "id": s.id,
                "heading": s.heading(lang),
                "recommendations": [
                    {
                        "id": r.id,
                        "kind": r.kind.value,
                        "direction": r.direction.value,
                        "strength": r.strength.value if r.strength else None,
                        "certainty": r.certainty.value if r.certainty else None,
                        "symbols": r.symbols,
                        "wording": r.wording(lang),
                    }
                    for r in g.in_section(s.id)
                ],
            }
            for s in g.sections
        ],
        "legend": legend_rows(g, lang),
        "legend_text": {
            "intro_strength": g.legend.intro_strength(lang),
            "good_practice": g.legend.good_practice(lang),
            "intro_certainty": g.legend.intro_certainty(lang),
            "no_evidence": g.legend.no_evidence(lang),
        },
    }


def legend_rows(g: Guideline, lang: Lang) -> list[dict[str, str]]:
    """The legend as (symbol, meaning) rows: strengths, good practice, then certainty."""
    rows = [{"symbol": s.symbol, "meaning": s.meaning(lang)} for s in g.legend.strength]
    rows.append({"symbol": GOOD_PRACTICE_SYMBOL, "meaning": t("good-practice", lang)})
    rows.extend({"symbol": c.symbol, "meaning": c.meaning(lang)} for c in g.legend.certainty)
    return rows


def legend_lines(g: Guideline, lang: Lang) -> list[str]:
    """The legend as the quick guide prints it: its paragraphs and symbol rows in order."""
    legend = g.legend
    return [
        legend.intro_strength(lang),
        *(f"{s.symbol} = {s.meaning(lang)}" for s in legend.strength),
        legend.good_practice(lang),
        legend.intro_certainty(lang),
        *(f"({c.symbol}) = {c.meaning(lang)}" for c in legend.certainty),
        legend.no_evidence(lang),
    ]


def scope_lines(g: Guideline, lang: Lang) -> list[str]:
    """The population text, then the software's reading of it, marked as assumptions."""
    lines = [f"{t('scope', lang)}: {g.scope.text(lang)}"]
    if g.scope_assumptions:
        lines.append(f"{t('scope-reading', lang)}:")
        lines.extend(f"- {a.text(lang)}" for a in g.scope_assumptions)
    return lines


def grade_in_words(g: Guideline, rec_id: str, lang: Lang) -> str:
    """The grade spelled out, e.g. 'a weak/conditional recommendation for; certainty: low'."""
    rec = g.recommendation(rec_id)
    if rec.strength is None:
        direction = t(f"direction-{rec.direction.value}", lang)
        return f"{t('good-practice', lang)} – {direction}"
    strength = next(
        s.meaning(lang)
        for s in g.legend.strength
        if s.direction is rec.direction and s.strength is rec.strength
    )
    certainty = next(c.meaning(lang) for c in g.legend.certainty if c.level is rec.certainty)
    return f"{strength}; {t('certainty', lang)}: {certainty}"


def guide_markdown(g: Guideline, lang: Lang) -> str:
    """The quick guide as Markdown."""
    lines = [
        f"# {g.title(lang)}",
        "",
        f"{g.publisher}, {t('version', lang)} {g.version} ({g.published.isoformat()})",
        "",
        f"> **{g.status.text(lang)}**",
        "",
        f"**{t('scope', lang)}:** {g.scope.text(lang)}",
        "",
    ]
    if g.scope_assumptions:
        lines += [f"*{t('scope-reading', lang)}:*", ""]
        lines += [f"- {a.text(lang)}" for a in g.scope_assumptions]
        lines.append("")
    if g.about:
        lines += [f"**{t('about-heading', lang)}**", ""]
    lines += [*(item for p in g.about for item in (p(lang), ""))]
    for section in g.sections:
        lines += [f"## {section.heading(lang)}", ""]
        for rec in g.in_section(section.id):
            lines += [f"- **{rec.symbols}** {rec.wording(lang)} `{rec.id}`", ""]
    lines += [f"## {t('legend', lang)}", ""]
    for line in legend_lines(g, lang):
        symbol, sep, meaning = line.partition(" = ")
        lines += [f"- **{symbol}** = {meaning}" if sep else f"{line}\n"]
    lines += ["", f"{t('source', lang)}: {g.source.citation(lang)} <{g.source.url}>", ""]
    return "\n".join(lines)


def fact_lines(a: Assessment, lang: Lang) -> list[str]:
    """The assessment date and the guideline's facts about the patient, as "label: value"."""
    return [
        f"{t('assessment-date', lang)}: {a.date.isoformat()}",
        *(f"{a.text(f.label, lang)}: {a.text(f.value, lang)}" for f in a.facts),
    ]


def open_deadlines(a: Assessment) -> list[Deadline]:
    """The deadlines shown as a line of their own: all but those whose recommendation is
    already listed as due or overdue."""
    listed = {
        r.recommendation.id for r in a.results if r.status in (RecStatus.DUE, RecStatus.OVERDUE)
    }
    return [d for d in a.deadlines if d.recommendation not in listed]


def assessment_summary(a: Assessment, lang: Lang) -> str:
    """A few plain lines for the patient record: date, scope and why, what needs attention,
    and the guideline's version and status."""
    g = a.guideline
    status = t("in-force" if g.status.in_force else "not-in-force", lang).lower()
    since = f" {t('since', lang)} {g.status.since.isoformat()}" if g.status.since else ""
    lines = [
        f"{g.publisher}: NKR {g.short_title(lang)}, {t('version', lang)} {g.version} "
        f"({status}{since})",
        "; ".join(fact_lines(a, lang)),
    ]
    if a.in_scope:
        lines.append(f"{t('in-scope', lang)}.")
    else:
        reasons = "; ".join(r.text(g, lang) for r in a.scope_reasons)
        lines.append(f"{t('out-of-scope', lang)}: {reasons}.")
    lines.extend(f"{a.text(n.title, lang)}: {a.text(n.text, lang)}" for n in a.notices)
    attention = [r for r in a.results if r.status.needs_attention]
    if attention:
        lines.append(f"{t('needs-attention', lang)}:")
        lines.extend(
            f"- {r.recommendation.label(lang)} ({r.recommendation.symbols}): "
            f"{t(f'status-{r.status.value}', lang)}. {r.reason.text(g, lang)}"
            for r in attention
        )
    elif a.in_scope:
        lines.append(f"{t('nothing-needs-attention', lang)}.")
    lines.extend(a.text(d.text, lang) for d in open_deadlines(a))
    lines.append(t("summary-made-by", lang))
    return "\n".join(lines) + "\n"
