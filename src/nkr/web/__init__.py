"""The clinician web app (server-rendered), served by ``nkr serve`` beside the CDS Hooks service.
Owned by issue 4.

Pages (Danish by default, ``?lang=en`` for English; a posted form carries ``lang``):

- ``/``: the quick guide. ``/anbefalinger/{rec_id}``: one recommendation (CDS Hooks cards
  link here).
- ``/vurdering``: the assessment form; a POST of its fields gives the result (``print=1`` its
  print view). A GET with case fields is redirected to the blank form: no patient data in URLs.
- ``/pjece``: the patient handout (``handout.toml``).
- ``/integration``: the app's own CDS Hooks services, with sample patients (``samples/``).
"""

from __future__ import annotations

from nkr.web._routes import bad_request_page, create_router, not_found_page

__all__ = ["bad_request_page", "create_router", "not_found_page"]
