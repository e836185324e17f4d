"""Installing the fictional guideline for a test: its folder (the package and the
``*.dist-info`` that declares its entry point) goes on ``sys.path``, and on ``PYTHONPATH``
for the command lines a test starts, so that the registry finds it exactly as it finds an
installed guideline. Nothing outside the tests ever sees it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from nkr._package import registry

FICTIONAL_ROOT: Final = Path(__file__).parent / "fictional"
FICTIONAL_ID: Final = "test-fiktiv-retningslinje"
LUMBAR_ID: Final = "nkr-lumbal-radikulopati"


def add_to_path(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """``folder`` first on ``sys.path`` and on ``PYTHONPATH``, and a fresh registry."""
    monkeypatch.syspath_prepend(str(folder))
    parts = [str(folder), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(parts))
    registry.cache_clear()


@pytest.fixture
def fictional(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The fictional guideline installed beside the lumbar one, for one test."""
    monkeypatch.delenv("NKR_GUIDELINE", raising=False)
    add_to_path(monkeypatch, FICTIONAL_ROOT)
    yield
    registry.cache_clear()
