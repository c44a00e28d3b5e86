"""Reports for people: the public release report and the steward's audit, as self-contained HTML pages."""

from .html import render_html as _render_audit_html

__all__ = ["render_html", "render_steward_html"]


def render_html(predicate) -> str:
    """The public report page (temporary plain rendering)."""
    import html
    import json

    body = html.escape(json.dumps(predicate, indent=2, ensure_ascii=False))
    return f"<!doctype html><meta charset=utf-8><title>synthdata report</title><pre>{body}</pre>"


def render_steward_html(predicate) -> str:
    """The steward's audit page: the exact audit, labelled not for release."""
    audit = predicate.get("audit", {})
    legacy = {**predicate, "quality": audit.get("quality", {}), "leakage": audit.get("leakage", {}),
              "audit": {"notes": audit.get("notes", []), "subsampled": audit.get("subsampled", [])}}
    return _render_audit_html(legacy)
