"""One Spark session (local mode, the audit's own settings) for all Spark tests of a pytest
worker process: a JVM starts once, in seconds, and every test of the worker shares it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from nkr.audit._spark import SparkOptions, spark_session

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    with spark_session(SparkOptions(shuffle_partitions=2)) as session:
        yield session
