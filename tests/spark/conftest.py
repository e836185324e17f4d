"""One Spark session (local mode, the audit's own settings) for all Spark tests of a pytest
worker process: a JVM starts once, in seconds, and every test shares it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from nkr.audit._spark import SparkOptions, spark_session

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # With --dist loadgroup, every Spark test goes to one xdist worker: one JVM, not two.
    for item in items:
        if "tests/spark/" in item.nodeid:
            item.add_marker(pytest.mark.xdist_group("spark"))


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    with spark_session(SparkOptions(shuffle_partitions=2)) as session:
        yield session
