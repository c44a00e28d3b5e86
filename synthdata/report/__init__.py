"""Reports for people: the public release report and the steward's audit, as self-contained HTML pages.

* :func:`render_html` — ``report.html`` in the shareable release directory, drawn only
  from the signed public predicate (``synthdata-report/2``): every figure on it is a DP
  release or post-processing of one.
* :func:`render_steward_html` — ``audit.html`` in ``NAME.steward-audit/``, drawn from the
  steward's predicate (``synthdata-steward-audit/1``): the exact audit, computed on the
  real data and labelled "NOT FOR RELEASE".

Layout: :mod:`.render` (environment, entry points), :mod:`.public` and :mod:`.steward`
(plain values from a predicate), :mod:`.svg` (chart geometry), :mod:`.formatting` (Jinja
filters), :mod:`.values` (defensive getters), ``templates/`` and ``style.css``.
"""

from .render import render_html, render_steward_html

__all__ = ["render_html", "render_steward_html"]
