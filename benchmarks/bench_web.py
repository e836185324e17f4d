"""Server time of every web page on the real server (uvicorn, one worker) on loopback.

Reads the server's own ``Server-Timing: app;dur=…`` header and the client's wall clock over
``--requests`` warm requests per page. Target (issue 4): no page over 100 ms server time.

Run: .venv/bin/python benchmarks/bench_web.py [--requests 50]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import re
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

from nkr._devserver import start_server, stop_server

ONSET = (dt.date.today() - dt.timedelta(days=20)).isoformat()
# The result page comes only from a POST (no patient data in URLs).
CASE = {"age": "45", "symptom_onset": ONSET, "signs": "reflex_loss", "planned": "mri"}
PAGES = {
    "quick guide": ("GET", "/", None),
    "quick guide (en)": ("GET", "/?lang=en", None),
    "recommendation": ("GET", "/anbefalinger/spine-surgeon-assessment", None),
    "unknown recommendation (404)": ("GET", "/anbefalinger/findes-ikke", None),
    "assessment form": ("GET", "/vurdering", None),
    "assessment result": ("POST", "/vurdering", CASE),
    "assessment result, print view": ("POST", "/vurdering", CASE | {"print": "1"}),
    "assessment GET with a case (303)": ("GET", f"/vurdering?{urlencode(CASE)}", None),
    "assessment POST, invalid": ("POST", "/vurdering", {"age": "45", "symptom_onset": "x"}),
    "patient handout": ("GET", "/pjece", None),
    "integrators page": ("GET", "/integration", None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        proc, base = start_server({}, Path(data_dir))
        try:
            print(f"python {platform.python_version()}, uvicorn 1 worker, {args.requests} requests")
            print(f"{'page':<32}{'server p50':>12}{'server max':>12}{'wall p50':>10}")
            with httpx.Client(base_url=base, timeout=10) as client:
                for name, (method, path, form) in PAGES.items():
                    server: list[float] = []
                    wall: list[float] = []
                    for i in range(args.requests + 1):
                        started = time.perf_counter()
                        response = client.request(method, path, data=form)
                        elapsed = (time.perf_counter() - started) * 1000
                        timing = re.match(r"app;dur=([\d.]+)", response.headers["server-timing"])
                        if timing is None or response.status_code >= 500:
                            raise SystemExit(f"{name}: unexpected answer {response.status_code}")
                        if i:  # the first request warms up
                            server.append(float(timing.group(1)))
                            wall.append(elapsed)
                    print(
                        f"{name:<32}{statistics.median(server):>9.2f} ms"
                        f"{max(server):>9.2f} ms{statistics.median(wall):>7.2f} ms"
                    )
        finally:
            stop_server(proc)


if __name__ == "__main__":
    main()
