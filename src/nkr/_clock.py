"""One "today" for every interface.

The assessment date decides day 84 or 85 of a patient's course, so the web app, the CDS Hooks
service and the command line take it from here: the date now in the deployment's time zone
(``NKR_TIMEZONE``, default Europe/Copenhagen), never the server's local date.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "Europe/Copenhagen"


def utc_now() -> dt.datetime:
    """The current instant; the one place a test replaces to stand at another moment."""
    return dt.datetime.now(dt.UTC)


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def today(timezone: str = DEFAULT_TIMEZONE) -> dt.date:
    """Today's date in ``timezone`` (an IANA name such as ``Europe/Copenhagen``)."""
    return utc_now().astimezone(_zone(timezone)).date()
