"""The CDS Hooks 2.0 service: discovery, the three hook services, and card feedback.

An edge like every other: it turns the request's FHIR data into the engine's patient case
(``nkr.fhir``), calls the engine, and renders the assessment as cards. Public names are listed
in ``__all__``.
"""

from __future__ import annotations

from nkr.cdshooks._feedback import DB_NAME, FeedbackStore, TopicReport, report
from nkr.cdshooks._routes import create_router
from nkr.cdshooks._services import SERVICES

__all__ = ["DB_NAME", "SERVICES", "FeedbackStore", "TopicReport", "create_router", "report"]
