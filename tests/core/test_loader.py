"""Loading and validating guideline data files: broken files name the file, field and fault."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from nkr import InputError, Kind, load_guideline
from nkr._texts import generic_texts, load_texts
from nkr.guidelines.lumbar_radiculopathy import GUIDELINE_FILE

ORIGINAL = GUIDELINE_FILE.read_text(encoding="utf-8")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "guideline.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _broken(tmp_path: Path, old: str, new: str) -> str:
    assert old in ORIGINAL, f"test setup: {old!r} not in the data file"
    path = _write(tmp_path, ORIGINAL.replace(old, new, 1))
    with pytest.raises(InputError) as excinfo:
        load_guideline(path)
    message = str(excinfo.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    return message


def test_the_shipped_file_is_valid() -> None:
    g = load_guideline(GUIDELINE_FILE)
    assert len(g.recommendations) == 10


def test_unknown_direction_names_the_field(tmp_path: Path) -> None:
    message = _broken(tmp_path, 'direction = "for"', 'direction = "maybe"')
    assert "recommendations[0].direction" in message
    assert "'for' or 'against'" in message


def test_graded_without_certainty(tmp_path: Path) -> None:
    message = _broken(tmp_path, 'certainty = "low"\n', "")
    assert "recommendations[0]" in message
    assert "needs both 'strength' and 'certainty'" in message


def test_good_practice_with_a_strength(tmp_path: Path) -> None:
    old = 'section = "active-treatment"\nkind = "good-practice"\n'
    message = _broken(tmp_path, old, old + 'strength = "weak"\n')
    assert "recommendations[3]" in message
    assert "no 'strength' or 'certainty'" in message


def test_missing_english_wording(tmp_path: Path) -> None:
    old = 'wording.en = "Consider offering supervised'
    message = _broken(tmp_path, old, 'wording.xx = "Consider offering supervised')
    assert "recommendations[1].wording" in message


def test_unknown_field(tmp_path: Path) -> None:
    message = _broken(tmp_path, 'isbn = "', 'isbnn = "')
    assert "isbnn: unknown field" in message


def test_unknown_section(tmp_path: Path) -> None:
    message = _broken(tmp_path, 'section = "mri"', 'section = "radiology"')
    assert "unknown section 'radiology'" in message


def test_duplicate_recommendation_id(tmp_path: Path) -> None:
    message = _broken(tmp_path, 'id = "supervised-exercise"', 'id = "physical-activity"')
    assert "duplicate id 'physical-activity'" in message


def test_recommendations_out_of_section_order(tmp_path: Path) -> None:
    message = _broken(tmp_path, 'section = "physical-activity"\nkind', 'section = "mri"\nkind')
    assert "order of their sections" in message


def test_bad_date(tmp_path: Path) -> None:
    message = _broken(tmp_path, "published = 2019-02-28", 'published = "2019-02-30"')
    assert "published" in message


def test_not_toml(tmp_path: Path) -> None:
    message = _broken(tmp_path, "schema_version = 1", "schema_version = = 1")
    assert "not valid TOML" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_guideline(tmp_path / "nope.toml")


def test_another_guideline_is_just_another_data_file(tmp_path: Path) -> None:
    """Nothing in the schema is specific to lumbar radiculopathy."""
    legend = tomllib.loads(ORIGINAL)["legend"]
    assert legend
    legend_toml = ORIGINAL[ORIGINAL.index("[legend]") : ORIGINAL.index("[[assumptions]]")]
    text = f"""
schema_version = 1
id = "nkr-example"
slug = "example"
publisher = "Sundhedsstyrelsen"
version = "1.0"
published = 2016-01-01
title = {{ da = "Eksempel", en = "Example" }}
short_title = {{ da = "Eksempel", en = "Example" }}
status = {{ in_force = true, text = {{ da = "Gældende", en = "In force" }} }}
source = {{ url = "https://example.org", citation = {{ da = "Kilde", en = "Source" }} }}
scope = {{ min_age_years = 18, max_symptom_days = 42, text = {{ da = "V", en = "A" }} }}

[[sections]]
id = "one"
heading = {{ da = "Et", en = "One" }}

[[recommendations]]
id = "strong-for"
label = {{ da = "X", en = "X" }}
section = "one"
kind = "graded"
direction = "for"
strength = "strong"
certainty = "high"
wording = {{ da = "Tilbyd X.", en = "Offer X." }}

[[recommendations]]
id = "strong-against"
label = {{ da = "Y", en = "Y" }}
section = "one"
kind = "graded"
direction = "against"
strength = "strong"
certainty = "moderate"
wording = {{ da = "Tilbyd ikke Y.", en = "Do not offer Y." }}

{legend_toml}
"""
    g = load_guideline(_write(tmp_path, text))
    assert g.about == ()
    assert [r.symbols for r in g.recommendations] == ["↑↑ ⊕⊕⊕⊕", "↓↓ ⊕⊕⊕"]
    assert g.recommendations[0].kind is Kind.GRADED


def test_scope_reading_names_known_assumptions(tmp_path: Path) -> None:
    message = _broken(
        tmp_path, 'assumptions = ["age-18-or-older"', 'assumptions = ["age-17-or-older"'
    )
    assert "scope.reading.assumptions: unknown assumption 'age-17-or-older'" in message


def test_broken_texts_file_names_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "texts.toml"
    path.write_text('[card]\nhello = { da = "Hej" }\n', encoding="utf-8")
    with pytest.raises(
        InputError, match=r"texts.toml: card.hello: expected texts in 'da' and 'en'"
    ):
        load_texts(path)
    path.write_text('[card]\nhello = { da = "Hej {name}", en = "Hi {name}" }\n', encoding="utf-8")
    assert load_texts(path)("card.hello", "en", name="Ann") == "Hi Ann"


def test_a_guidelines_texts_fall_back_on_the_generic_ones(tmp_path: Path) -> None:
    path = tmp_path / "texts.toml"
    path.write_text('own = { da = "Egen", en = "Own" }\n', encoding="utf-8")
    texts = load_texts(path, fallback=generic_texts())
    assert texts("own", "da") == "Egen"
    assert texts("version", "da") == generic_texts()("version", "da")
    with pytest.raises(KeyError):
        texts("no-such-key", "da")


def test_a_text_given_in_two_files_names_both(tmp_path: Path) -> None:
    one, two = tmp_path / "one.toml", tmp_path / "two.toml"
    for path in (one, two):
        path.write_text('own = { da = "Egen", en = "Own" }\n', encoding="utf-8")
    with pytest.raises(InputError, match=rf"{two}: own: already given in {one}"):
        load_texts(one, two)
