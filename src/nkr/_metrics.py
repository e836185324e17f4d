"""Prometheus metrics of the service (``prometheus-client``), served at ``/metrics`` when
``NKR_METRICS_TOKEN`` is set.

Labels carry only what the service itself names (a route template, a service id, a status
code, an outcome or a reason code): never a patient, a URL, an issuer's token or anything
else from a request.

With several worker processes (``nkr serve --workers N``) each worker counts in files of its
own in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode, which
:func:`prepare_multiprocess` sets up before the workers start), and ``/metrics`` shows the
sum over all of them, whichever worker answers the scrape. Only counters and histograms are
used: summed over live and dead workers alike, they need no clean-up when a worker exits.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
# The folder under the data folder where the workers of one `nkr serve` count.
MULTIPROC_FOLDER: Final = "metrics-workers"

# Latency buckets for calls answered in milliseconds, with room for slow FHIR fetches.
_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS: Final = Counter(
    "nkr_http_requests",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
REQUEST_SECONDS: Final = Histogram(
    "nkr_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["route"],
    buckets=_BUCKETS,
)
CDS_CALLS: Final = Counter(
    "nkr_cds_calls",
    "CDS Hooks service calls, by service id and status code.",
    ["service", "status"],
)
CDS_CALL_SECONDS: Final = Histogram(
    "nkr_cds_call_duration_seconds",
    "Time to answer a CDS Hooks service call, by service id.",
    ["service"],
    buckets=_BUCKETS,
)
FETCHES: Final = Counter(
    "nkr_prefetch_fetches",
    "Prefetch keys fetched from an EHR's FHIR server, by outcome (ok, denied, busy, timeout, "
    "too-large, error).",
    ["outcome"],
)
FEEDBACK: Final = Counter(
    "nkr_feedback",
    "Card feedback items, by outcome (accepted, overridden) or refused.",
    ["outcome"],
)
JWT_REJECTIONS: Final = Counter(
    "nkr_jwt_rejections",
    "Calls refused by JWT authentication, by reason code.",
    ["reason"],
)


def prepare_multiprocess(data_dir: Path) -> Path:
    """Set up multiprocess mode for workers about to start: an empty folder under
    ``data_dir`` named in ``PROMETHEUS_MULTIPROC_DIR``, which the workers inherit.

    Emptied at every start (prometheus-client's rule): counts left by the workers of an
    earlier run would otherwise be added to this run's, and ``/metrics`` counters must start
    from zero when the service does. Must run before any worker imports prometheus-client,
    which reads the variable once on import."""
    folder = (data_dir / MULTIPROC_FOLDER).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.db"):
        old.unlink()
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder


def exposition() -> bytes:
    """Every metric in Prometheus's text format: this process's counts, or in multiprocess
    mode the sum over all workers' files."""
    folder = os.environ.get(MULTIPROC_ENV)
    if folder:
        registry = CollectorRegistry()
        registry.register(_WorkerFiles(Path(folder)))
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def worker_files(folder: Path) -> list[str]:
    """The workers' count files that can be read now. prometheus-client creates a file
    empty and then sizes it, so a scrape in that moment sees an empty file: it holds no
    counts yet and is left out (reading it would fail)."""
    return sorted(str(p) for p in folder.glob("*.db") if p.stat().st_size > 0)


class _WorkerFiles:
    """The sum over all workers' files (prometheus-client's multiprocess merge)."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def collect(self) -> Iterable[Metric]:
        merged: Iterable[Metric] = MultiProcessCollector.merge(  # type: ignore[no-untyped-call]
            worker_files(self._folder), accumulate=True
        )
        return merged
