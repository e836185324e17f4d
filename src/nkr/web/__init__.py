"""The clinician web app (server-rendered), served by ``nkr serve`` beside the CDS Hooks service.

Generic: it takes the guidelines from the registry (:mod:`nkr._package`) and renders what each
gives it (:mod:`nkr.web._spec`: its form, handout and samples; its texts). Pages (Danish by
default, ``?lang=en`` for English; a posted form carries ``lang``), for each guideline under
its slug:

- ``/{slug}/``: the quick guide. ``/{slug}/anbefalinger/{rec_id}``: one recommendation.
- ``/{slug}/vurdering``: the assessment form; a POST of its fields gives the result
  (``print=1`` its print view). A GET with case fields is redirected to the blank form: no
  patient data in URLs.
- ``/{slug}/pjece``: the patient handout.

The default guideline's pages also answer without the slug (``/anbefalinger/{rec_id}``,
``/vurdering``, ``/pjece``: CDS Hooks cards link there). ``/`` is the default guideline's
quick guide when it is the only one installed, else the list of guidelines.
``/integration``: the app's CDS Hooks services (of every guideline), with the sample patients
of the guideline chosen (``?guideline={slug}``, default the default one).
"""

from __future__ import annotations

from nkr.web._routes import bad_request_page, create_router, not_found_page

__all__ = ["bad_request_page", "create_router", "not_found_page"]
