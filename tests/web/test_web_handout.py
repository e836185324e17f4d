"""The patient handout says nothing the guideline does not: every paragraph names the
recommendations it is based on, and the page shows the guideline's status and source."""

from __future__ import annotations

import re

import httpx
import pytest

import nkr
from nkr import Lang
from nkr.web._handout import handout

G = nkr.guideline()


def test_every_paragraph_is_based_on_existing_recommendations() -> None:
    for paragraph in handout().paragraphs:
        assert paragraph.based_on, paragraph.id
        for rec_id in paragraph.based_on:
            assert rec_id in G.by_id, f"{paragraph.id}: unknown recommendation {rec_id!r}"


def test_the_handout_covers_activity_treatments_scans_and_injections() -> None:
    covered = {rec_id for p in handout().paragraphs for rec_id in p.based_on}
    for rec_id in ("physical-activity", "supervised-exercise", "manual-mobilisation", "mri"):
        assert rec_id in covered
    assert "glucocorticoid-injection" in covered


@pytest.mark.parametrize("lang", nkr.LANGS)
def test_handout_page_shows_status_source_and_references(server: str, lang: Lang) -> None:
    page = httpx.get(f"{server}/pjece?lang={lang}", timeout=10).text
    assert f'<html lang="{lang}">' in page
    assert G.status.text(lang) in page
    assert G.source.citation(lang) in page
    assert G.source.url in page
    for paragraph in handout().paragraphs:
        assert paragraph.text(lang) in page
        section = re.search(
            rf'<section class="handout-par" id="p-{paragraph.id}"[^>]*>(.*?)</section>',
            page,
            re.S,
        )
        assert section is not None
        linked = re.findall(r'data-rec="([a-z0-9-]+)"', section.group(1))
        assert linked == list(paragraph.based_on)
