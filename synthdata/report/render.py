"""Render the two report pages: prepare plain values from a predicate, fill a Jinja2 template.

A page reads its predicate and nothing else — no data, no model, no clock — so it can be
regenerated from the signed ``report.json`` and must agree with it; where they differ,
the signed JSON is the record. Templates (``templates/*.html.j2``) and the stylesheet
(``style.css``) ship as package data. Autoescaping is on for every template, so any text
from the predicate (a column named ``<script>``) reaches the page as text.

The page is self-contained: inline CSS and inline SVG, no script, nothing fetched. Its
Content-Security-Policy forbids loading anything and allows exactly one stylesheet, the
one whose SHA-256 it names.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

from . import svg
from .formatting import FILTERS
from .public import MODALITY_VIEWS, public_view
from .steward import QUALITY_VIEWS, steward_view

__all__ = ["render_html", "render_steward_html"]


def render_html(predicate: Mapping[str, Any]) -> str:
    """The public report page (``report.html``) for a ``synthdata-report/2`` predicate.

    Its layout follows ``predicate["modality"]`` (``public_<modality>.html.j2``; a
    modality without a template gets the shared sections only). Any part may be
    missing or malformed; the page then says "not reported" where the figure would be.
    """
    view = public_view(predicate)
    name = f"public_{view['modality']}.html.j2" if view["modality"] in MODALITY_VIEWS else "public.html.j2"
    return _render(name, view)


def render_steward_html(predicate: Mapping[str, Any]) -> str:
    """The steward's exact audit page (``audit.html``) for a ``synthdata-steward-audit/1`` predicate."""
    view = steward_view(predicate)
    name = f"steward_{view['modality']}.html.j2" if view["modality"] in QUALITY_VIEWS else "steward.html.j2"
    return _render(name, view)


def _render(template: str, view: dict[str, Any]) -> str:
    css, policy = _style()
    return _environment().get_template(template).render(view=view, css=css, csp=policy, real_colour=svg.REAL_COLOUR,
                                                         synthetic_colour=svg.SYNTHETIC_COLOUR)


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("synthdata.report", "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,  # a view key the template expects but the view lacks is a bug
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env


@cache
def _style() -> tuple[Markup, Markup]:
    """The stylesheet (trusted package data, not predicate text) and the policy that allows it alone."""
    css = resources.files("synthdata.report").joinpath("style.css").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(css.encode("utf-8")).digest()).decode("ascii")
    policy = (f"default-src 'none'; style-src 'sha256-{digest}'; img-src 'none'; base-uri 'none'; "
              "form-action 'none'")
    return Markup(css), Markup(policy)  # constant text and base64: nothing to escape
