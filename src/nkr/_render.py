"""Renderings of the guideline and of an assessment shared by the interfaces."""

from __future__ import annotations

from typing import Any

from nkr._guideline import Guideline, Lang
from nkr._i18n import t


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
    }


def legend_rows(g: Guideline, lang: Lang) -> list[dict[str, str]]:
    """The legend as (symbol, meaning) rows: strengths, good practice, then certainty."""
    rows = [{"symbol": s.symbol, "meaning": s.meaning(lang)} for s in g.legend.strength]
    rows.append({"symbol": "√", "meaning": g.legend.good_practice(lang)})
    rows.extend({"symbol": c.symbol, "meaning": c.meaning(lang)} for c in g.legend.certainty)
    return rows


def grade_in_words(g: Guideline, rec_id: str, lang: Lang) -> str:
    """The grade spelled out, e.g. 'a weak/conditional recommendation for; certainty: low'."""
    rec = g.recommendation(rec_id)
    if rec.strength is None:
        direction = t(f"direction-{rec.direction.value}", lang)
        return f"{t('good-practice', lang)} ({direction})"
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
    for section in g.sections:
        lines += [f"## {section.heading(lang)}", ""]
        for rec in g.in_section(section.id):
            lines += [f"- **{rec.symbols}** {rec.wording(lang)} `{rec.id}`", ""]
    lines += [f"## {t('legend', lang)}", ""]
    lines += [f"- **{row['symbol']}** = {row['meaning']}" for row in legend_rows(g, lang)]
    lines += ["", f"{t('source', lang)}: {g.source.citation(lang)} <{g.source.url}>", ""]
    return "\n".join(lines)
