"""The CDS Hooks 2.0 service: discovery, the services of every installed guideline, and card
feedback.

An edge like every other: it turns the request's FHIR data into the guideline's patient case
(``nkr.fhir``, the guideline's reading), calls the guideline's rules, and has its card rules
turn the assessment into cards (:class:`CardKit` gives them their frame). Public names are
listed in ``__all__``.
"""

from __future__ import annotations

from nkr.cdshooks._feedback import DB_NAME, FeedbackStore, TopicReport, report
from nkr.cdshooks._kit import CardKit
from nkr.cdshooks._routes import create_router

__all__ = ["DB_NAME", "CardKit", "FeedbackStore", "TopicReport", "create_router", "report"]
