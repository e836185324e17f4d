"""The public API is small and listed; everything else is private."""

from __future__ import annotations

import nkr


def test_all_is_exactly_the_public_api() -> None:
    public = {name for name in dir(nkr) if not name.startswith("_")}
    subpackages = {"guidelines", "cdshooks", "fhir", "web", "audit"}
    assert set(nkr.__all__) == public - subpackages


def test_all_names_resolve() -> None:
    for name in nkr.__all__:
        assert getattr(nkr, name) is not None
