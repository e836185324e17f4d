"""The clinician web app (server-rendered), served by ``nkr serve`` beside the CDS Hooks service.
Owned by issue 4.

Pages (Danish by default, ``?lang=en`` for English; a posted form carries ``lang``):

- ``/``: the quick guide. ``/anbefalinger/{rec_id}``: one recommendation (CDS Hooks cards
  link here).
- ``/vurdering``: the assessment form; POST (or GET with the same fields) gives the result,
  ``print=1`` its print view.
- ``/pjece``: the patient handout (``handout.toml``).
- ``/integration``: the app's own CDS Hooks services, with sample patients (``samples/``).
"""

from __future__ import annotations

from nkr.web._routes import create_router, not_found_page

__all__ = ["create_router", "not_found_page"]
