"""The guideline data against the official quick guide (the seed), read independently here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import nkr
from nkr import Certainty, Direction, Kind, Strength
from nkr._render import legend_lines
from nkr.guidelines.lumbar_radiculopathy import package

# A copy of the official Danish quick guide as extracted from its PDF (the project's seed, kept
# in ../shared/seeds/ beside the repository); the copy keeps the tests self-contained.
SEED = Path(__file__).with_name("data") / "quick-guide-da.txt"
SHARED_SEED = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "000_3de8503af8e3db43.txt"

# The seed's recommendation lines start with the strength symbol(s); PDF glyphs for empty
# certainty circles come through as private-use characters, so only ⊕ is counted.
_REC_START = re.compile(r"^(↑↑|↓↓|↑|↓|√) ")
_CERTAINTY = re.compile(r" \((⊕+)[\uf000-\uf8ff]*\)\.$")


@dataclass
class SeedRecommendation:
    section: str
    symbol: str
    marks: int  # count of ⊕; 0 for good practice
    wording: str


def _seed_text() -> str:
    if not SEED.exists():
        pytest.fail(f"the seed quick guide is missing at {SEED}")
    return SEED.read_text(encoding="utf-8")


def _parse_seed() -> tuple[list[str], list[SeedRecommendation]]:
    """Sections and recommendations of the quick guide, hyphenation at line ends removed."""
    body = _seed_text().split(" Om quick guiden")[0]
    blocks: list[str] = []
    current: list[str] = []
    for raw in body.splitlines():
        line = raw.strip()
        if not line:
            if current:
                blocks.append(_join(current))
                current = []
            continue
        # A new recommendation, or a heading after a page break (the PDF export indents it).
        if current and (_REC_START.match(line) or raw.startswith(" ")):
            blocks.append(_join(current))
            current = []
        if current and not _REC_START.match(current[0]) and not _REC_START.match(line):
            blocks.append(_join(current))
            current = []
        current.append(line)
    if current:
        blocks.append(_join(current))
    sections: list[str] = []
    recs: list[SeedRecommendation] = []
    for block in blocks:
        start = _REC_START.match(block)
        if not start:
            sections.append(block)
            continue
        text = block[start.end() :]
        cert = _CERTAINTY.search(text)
        marks = len(cert.group(1)) if cert else 0
        wording = text[: cert.start()] + "." if cert else text
        recs.append(SeedRecommendation(sections[-1], start.group(1), marks, wording))
    return sections, recs


def _join(lines: list[str]) -> str:
    text = ""
    for line in lines:
        if text.endswith("-") and not text.endswith(" -"):
            text = text[:-1] + line
        else:
            text = f"{text} {line}" if text else line
    return text


SECTIONS, SEED_RECS = _parse_seed()
GUIDELINE = package().content


def test_the_copy_is_the_seed() -> None:
    if not SHARED_SEED.exists():
        pytest.skip("no ../shared/seeds beside this checkout to compare the copy with")
    assert SEED.read_bytes() == SHARED_SEED.read_bytes()


def test_seed_parses_into_seven_sections_and_ten_recommendations() -> None:
    assert len(SECTIONS) == 7
    assert len(SEED_RECS) == 10


def test_sections_are_the_seeds_headings_in_order() -> None:
    assert [s.heading.da for s in GUIDELINE.sections] == SECTIONS


@pytest.mark.parametrize("index", range(10))
def test_danish_wording_is_verbatim(index: int) -> None:
    assert GUIDELINE.recommendations[index].wording.da == SEED_RECS[index].wording


@pytest.mark.parametrize("index", range(10))
def test_grade_symbols_match_the_seed(index: int) -> None:
    rec = GUIDELINE.recommendations[index]
    seed = SEED_RECS[index]
    assert rec.strength_symbol == seed.symbol
    assert rec.certainty_symbol == "⊕" * seed.marks


@pytest.mark.parametrize("index", range(10))
def test_recommendation_sits_in_the_seeds_section(index: int) -> None:
    rec = GUIDELINE.recommendations[index]
    section = next(s for s in GUIDELINE.sections if s.id == rec.section)
    assert section.heading.da == SEED_RECS[index].section


def test_stable_ids_and_grades_as_the_issue_lists_them() -> None:
    expected = {
        "physical-activity": "↑ ⊕⊕",
        "supervised-exercise": "↑ ⊕⊕",
        "specific-exercise": "↑ ⊕",
        "combined-exercise": "√",
        "manual-mobilisation": "↑ ⊕",
        "acupuncture": "√",
        "exercise-or-mobilisation": "↑ ⊕",
        "mri": "↓ ⊕",
        "glucocorticoid-injection": "↓ ⊕",
        "spine-surgeon-assessment": "√",
    }
    assert {r.id: r.symbols for r in GUIDELINE.recommendations} == expected


def test_structured_grades() -> None:
    g = GUIDELINE
    assert g.recommendation("physical-activity").certainty is Certainty.LOW
    assert g.recommendation("mri").direction is Direction.AGAINST
    assert g.recommendation("mri").strength is Strength.WEAK
    acupuncture = g.recommendation("acupuncture")
    assert acupuncture.kind is Kind.GOOD_PRACTICE
    assert acupuncture.direction is Direction.AGAINST
    assert acupuncture.strength is None
    assert acupuncture.certainty is None


def test_legend_meanings_are_the_seeds() -> None:
    seed = _seed_text()
    for row in GUIDELINE.legend.strength:
        assert f"{row.symbol} = {row.meaning.da}" in " ".join(seed.split())
    for cert in GUIDELINE.legend.certainty:
        marks = len(cert.symbol)
        pattern = rf"\(⊕{{{marks}}}[\uf000-\uf8ff]*\) = {re.escape(cert.meaning.da)}$"
        assert re.search(pattern, seed, re.MULTILINE), cert.level


def test_every_text_has_an_english_translation_that_differs() -> None:
    for rec in GUIDELINE.recommendations:
        assert rec.wording.en != rec.wording.da
    for section in GUIDELINE.sections:
        assert section.heading.en != section.heading.da


def test_status_is_not_in_force_since_2023() -> None:
    assert GUIDELINE.status.in_force is False
    assert GUIDELINE.status.since is not None
    assert GUIDELINE.status.since.isoformat() == "2023-03-22"
    assert "ikke gældende" in GUIDELINE.status.text.da.lower()
    assert GUIDELINE.version == "1.1"
    assert GUIDELINE.publisher == "Sundhedsstyrelsen"


def test_scope_is_adults_and_twelve_weeks() -> None:
    assert GUIDELINE.scope.min_age_years == 18
    assert GUIDELINE.scope.max_symptom_days == 84


def _seed_prose() -> str:
    """The seed's text as one line: whitespace folded, line-end hyphenation removed, the
    PDF's private-use glyphs for empty certainty circles dropped."""
    text = re.sub(r"(?<=[a-zæøå])-\n(?=[a-zæøå])", "", _seed_text())
    text = re.sub(r"[\uf000-\uf8ff]", "", text)
    return " ".join(text.split())


def test_legend_paragraphs_are_verbatim() -> None:
    legend = GUIDELINE.legend
    prose = _seed_prose()
    for text in (
        legend.intro_strength,
        legend.good_practice,
        legend.intro_certainty,
        legend.no_evidence,
    ):
        assert text.da in prose


def test_legend_reads_in_the_seeds_order() -> None:
    """The legend as nkr prints it, line by line, is the seed's legend in the same order."""
    prose = _seed_prose()
    start = prose.index("Foran anbefalingerne")
    end = prose.index("Uddybende materiale")
    lines = legend_lines(GUIDELINE, "da")
    assert " ".join(lines) == prose[start:end].strip()


def test_about_paragraphs_are_verbatim() -> None:
    prose = _seed_prose()
    assert len(GUIDELINE.about) == 2
    for paragraph in GUIDELINE.about:
        assert paragraph.da in prose
        assert paragraph.en != paragraph.da


def test_population_text_gives_no_detail_of_the_softwares_own_as_the_guidelines() -> None:
    """The source says "over 18 years" and lists three signs; nkr's reading (18 or older,
    sensory disturbance as a fourth sign) is shown as its assumptions."""
    for lang in nkr.LANGS:
        text = GUIDELINE.scope.text(lang).lower()
        assert "18 år eller ældre" not in text
        assert "18 years or older" not in text
        assert "føleforstyrrelse" not in text
        assert "sensory" not in text
    assert "over 18 år" in GUIDELINE.scope.text.da
    ids = [a.id for a in GUIDELINE.scope_assumptions]
    assert ids == ["age-18-or-older", "sensory-disturbance-sign"]
    assert "fyldt 18 år" in GUIDELINE.scope_assumptions[0].text.da


def test_english_says_involvement_and_direction_specific() -> None:
    """The English wording adds no mechanism ("compression") and no "keep up"."""
    texts = [GUIDELINE.title.en, GUIDELINE.short_title.en, GUIDELINE.source.citation.en]
    texts += [r.wording.en for r in GUIDELINE.recommendations]
    texts += [label.en for vocab in GUIDELINE.vocabulary.values() for label in vocab.values()]
    for text in texts:
        assert "compression" not in text
        assert "keep up" not in text
        assert "directional-specific" not in text.lower()
    assert "nerve-root involvement" in GUIDELINE.title.en
    assert "direction-specific" in GUIDELINE.recommendation("specific-exercise").wording.en
