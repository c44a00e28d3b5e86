"""The release report for people: one self-contained HTML page, drawn from the predicate.

:func:`render_html` turns the report predicate (the ``predicate`` of ``report.json``)
into ``report.html``. It reads nothing else — no data, no model, no clock — so the page
can be regenerated from a verified ``report.json`` and must agree with it; where they
disagree, the signed JSON is the record.

The page is for a compliance reviewer: a verdict box first (privacy spent, leakage
verdict, quality, rows), then the privacy budget line by line, quality details,
leakage details and provenance (input fingerprint, software, signing key, how to
verify). Each figure carries one sentence saying what it shows.

It is self-contained and loads nothing: inline CSS, inline SVG drawn here, no script,
no external address (a Content-Security-Policy forbids fetching anything at all), and
it prints on paper. Every text taken from the predicate is HTML-escaped. The predicate
holds aggregates only, so the page shows no real record; the seed, if the predicate
carries one, is not shown (it would let anyone replay the privacy noise).

Missing parts are tolerated: a predicate without a holdout, without a quality or
leakage object, or with ``None`` for a figure renders with "not available" where the
figure would be.
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_FLOOR, Decimal
from typing import Any

__all__ = ["render_html"]

#: Colours of the two tables in every plot (blue and orange stay apart for colour-blind readers).
REAL_COLOUR = "#1f4e79"
SYNTHETIC_COLOUR = "#e07b39"
_ATTACK_COLOURS = ("#1f4e79", "#c0392b", "#2e7d32", "#6a1b9a", "#8d6e00")
_STEP_COLOURS = ("#1f4e79", "#e07b39", "#2e7d32", "#6a1b9a", "#c0392b", "#00838f", "#8d6e00", "#5d4037")
#: Longest label a distribution plot writes out; the full text is in the bar's tooltip.
_LABEL_CHARS = 25
_DASH = "–"
#: A white outline behind SVG text, so that a line crossing a label leaves it readable.
_HALO = ' stroke="#fff" stroke-width="3" paint-order="stroke"'

_CSS = """
:root { --pass: #1a7f37; --pass-bg: #dafbe1; --flag: #b42318; --flag-bg: #fee4e2;
        --neutral: #57606a; --neutral-bg: #f1f3f5; --rule: #d0d7de; --ink: #1f2328; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); background: #fff; margin: 0; }
main { max-width: 1120px; margin: 0 auto; padding: 14px 24px 40px; }
header h1 { font-size: 22px; margin: 0 0 2px; }
header .meta { color: var(--neutral); margin: 0 0 10px; font-size: 13px; }
h2 { font-size: 19px; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--rule); }
h3 { font-size: 16px; margin: 20px 0 6px; }
p { margin: 6px 0; }
.explain { color: #424a53; font-size: 14px; max-width: 860px; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
.mono { overflow-wrap: anywhere; }
pre { background: var(--neutral-bg); padding: 8px 10px; border-radius: 4px; white-space: pre-wrap; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 14px; }
th, td { border: 1px solid var(--rule); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--neutral-bg); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.params { font-size: 12.5px; color: #424a53; }
#verdict { border: 3px solid var(--neutral); border-radius: 8px; padding: 10px 14px 12px; margin: 8px 0 6px; }
#verdict.pass { border-color: var(--pass); }
#verdict.flag { border-color: var(--flag); }
#verdict h2 { margin: 0 0 8px; border: 0; padding: 0; font-size: 18px; }
.tiles { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 10px; }
.tile { border-radius: 6px; padding: 8px 10px; background: var(--neutral-bg); }
.tile .k { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--neutral); }
.tile .v { font-size: 20px; font-weight: 650; margin: 2px 0; }
.tile .s { font-size: 13px; color: #424a53; }
.tile.pass { background: var(--pass-bg); } .tile.pass .v { color: var(--pass); }
.tile.flag { background: var(--flag-bg); } .tile.flag .v { color: var(--flag); }
.badge { display: inline-block; font-weight: 700; padding: 1px 8px; border-radius: 10px; color: #fff;
         background: var(--neutral); font-size: 13px; }
.badge.pass { background: var(--pass); } .badge.flag { background: var(--flag); }
.callout { border-left: 5px solid var(--neutral); background: var(--neutral-bg); padding: 8px 12px; margin: 8px 0; }
.callout.pass { border-color: var(--pass); background: var(--pass-bg); }
.callout.flag { border-color: var(--flag); background: var(--flag-bg); }
.legend { font-size: 13px; margin: 4px 0; }
.swatch { display: inline-block; width: 12px; height: 12px; vertical-align: -1px; margin: 0 5px 0 0;
          border-radius: 2px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 12px 16px; }
figure { margin: 6px 0; break-inside: avoid; page-break-inside: avoid; }
figure.side { display: flex; gap: 18px; align-items: flex-start; flex-wrap: wrap; }
figure.side figcaption { flex: 1 1 280px; max-width: 520px; }
.legend .key { display: inline-block; white-space: nowrap; margin-right: 14px; }
figure.dist { border: 1px solid var(--rule); border-radius: 6px; padding: 6px 8px; }
figcaption { font-size: 13px; margin-bottom: 2px; }
figcaption b { font-size: 14px; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; fill: #1f2328; }
.na { color: var(--neutral); font-style: italic; }
ul.tight { margin: 4px 0; padding-left: 20px; } ul.tight li { margin: 2px 0; }
footer { margin-top: 30px; color: var(--neutral); font-size: 13px; border-top: 1px solid var(--rule);
         padding-top: 8px; }
@media (max-width: 820px) { .tiles { grid-template-columns: repeat(2, minmax(0, 1fr)); } }
@media print {
  body { font-size: 11pt; } main { max-width: none; padding: 0; }
  h2 { break-after: avoid; page-break-after: avoid; } table, .tile { break-inside: avoid; }
  .tiles { grid-template-columns: repeat(2, minmax(0, 1fr)); }
  .grid { grid-template-columns: repeat(2, minmax(0, 1fr)); }
}
"""

_FOOTER = (
    "<footer>This page is drawn from the predicate of report.json alone and can be regenerated from it; the "
    "signed report.json is the record. It holds aggregates only, never a row of the input.</footer>"
)

# A policy that forbids loading anything: only the inline style and inline SVG render.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def render_html(predicate: Mapping[str, Any]) -> str:
    """The report page for a report predicate, as one self-contained HTML document.

    ``predicate`` is the ``predicate`` of ``report.json`` (format ``synthdata-report/1``):
    ``privacy``, ``quality``, ``leakage``, ``audit``, ``data``, ``model``, ``software``,
    ``signing``, ``files``, ``created``, ``modality``. Any part may be missing or
    ``None``; the page then says the figure is not available. The result uses no
    script and refers to no external resource; every text from the predicate is
    escaped. The same predicate always gives the same page.
    """
    p = predicate if isinstance(predicate, Mapping) else {}
    body = "\n".join([
        _header(p),
        _verdict(p),
        _privacy_section(p),
        _quality_section(p),
        _leakage_section(p),
        _provenance_section(p),
        _FOOTER,
    ])
    name = _get(p, "data", "input_name")
    title = "synthdata release report" + (f": {name}" if name else "")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_CSP}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


# --------------------------------------------------------------------------- verdict


def _header(p: Mapping[str, Any]) -> str:
    facts = [
        f"input <b>{_e(_get(p, 'data', 'input_name') or 'unnamed')}</b>",
        f"created {_e(p.get('created') or 'at an unknown time')}",
        f"modality {_e(p.get('modality') or 'unknown')}",
        f"report format {_e(p.get('format') or 'unknown')}",
    ]
    return f"<header>\n<h1>Synthetic data release report</h1>\n<p class=\"meta\">{' · '.join(facts)}</p>\n</header>"


def _verdict(p: Mapping[str, Any]) -> str:
    privacy_state, privacy_tile = _privacy_tile(_map(p.get("privacy")))
    leak_state, leak_tile = _leak_tile(_map(p.get("leakage")))
    if "flag" in (privacy_state, leak_state):
        state = "flag"
    elif privacy_state == "pass" and leak_state == "pass":
        state = "pass"
    else:
        state = "neutral"
    tiles = [privacy_tile, leak_tile, _quality_tile(_map(p.get("quality"))), _rows_tile(_map(p.get("data")))]
    return (
        f"<section id=\"verdict\" class=\"{state}\">\n<h2>Verdict</h2>\n<div class=\"tiles\">\n"
        + "\n".join(tiles)
        + "\n</div>\n</section>"
    )


def _tile(key: str, value: str, sub: str, state: str = "") -> str:
    return (
        f"<div class=\"tile {state}\"><div class=\"k\">{key}</div><div class=\"v\">{value}</div>"
        f"<div class=\"s\">{sub}</div></div>"
    )


def _privacy_tile(privacy: Mapping[str, Any]) -> tuple[str, str]:
    target, spent, delta = privacy.get("epsilon"), privacy.get("epsilon_spent"), privacy.get("delta")
    if not _real(spent):
        return "neutral", _tile("Privacy (ε, δ)", "<span class=\"na\">not available</span>",
                                "the report states no privacy spend")
    over = _real(target) and spent > target * (1 + 1e-9)
    value = f"ε {_spent(spent)}" + (f" of {_g(target)}" if _real(target) else "")
    sub = [f"δ = {_sci(delta)}" if _real(delta) else "δ not stated"]
    if privacy.get("accountant"):
        sub.append(f"{_e(privacy['accountant'])} accountant")
    if privacy.get("unit"):
        sub.append(f"unit: {_e(privacy['unit'])}")
    if over:
        sub.insert(0, "<b>spent more than the target</b>")
    return ("flag" if over else "pass"), _tile("Privacy spent", value, " · ".join(sub), "flag" if over else "")


def _leak_tile(leakage: Mapping[str, Any]) -> tuple[str, str]:
    state, word = _leak_state(leakage)
    verdict = leakage.get("verdict")
    sub = _e(verdict) if verdict else "the report holds no leakage audit"
    bound = leakage.get("empirical_epsilon_lower_bound")
    if _real(bound):
        sub += f" <br>Empirical ε lower bound {_num(bound, 2)}"
        if _real(leakage.get("claimed_epsilon")):
            sub += f" (claimed {_g(leakage['claimed_epsilon'])})"
    return state, _tile("Leakage audit", word, sub, state if state != "neutral" else "")


def _leak_state(leakage: Mapping[str, Any]) -> tuple[str, str]:
    detected = leakage.get("leak_detected")
    if detected is True:
        return "flag", "Flagged"
    if detected is False:
        return "pass", "No leak detected"
    return "neutral", "Not tested"


def _quality_tile(quality: Mapping[str, Any]) -> str:
    score = quality.get("sdmetrics_score")
    value = f"{_pct(score, 1)}" if _real(score) else "<span class=\"na\">not available</span>"
    sub = ["SDMetrics quality score (100% = same distributions)"]
    if not _real(score) and _real(quality.get("frechet_distance")):  # images: no SDMetrics
        value = f"FD {_num(quality['frechet_distance'], 2)}"
        sub = [f"Fréchet distance in a small CNN's features (not FID); two halves of the real images: "
               f"{_num(quality.get('frechet_distance_floor'), 2)}"]
    utility = _utility_sentence(_map(quality.get("ml_utility")))
    if utility:
        sub.append(utility)
    return _tile("Quality", value, " · ".join(sub))


def _utility_sentence(utility: Mapping[str, Any]) -> str:
    if not utility:
        return ""
    metric = "r2" if utility.get("task") == "regression" else "auroc"
    if metric == "auroc" and not _real(_get(utility, "synthetic", "auroc")):
        metric = "accuracy"  # image utility: a CNN's accuracy only
    name = {"r2": "R²", "auroc": "AUROC", "accuracy": "accuracy"}[metric]
    synthetic, real = _get(utility, "synthetic", metric), _get(utility, "real", metric)
    target = f" for {_e(utility['target'])}" if utility.get("target") is not None else ""
    return f"ML utility{target}: {name} {_num(synthetic)} trained on synthetic vs {_num(real)} on real rows"


def _rows_tile(data: Mapping[str, Any]) -> str:
    synthetic = data.get("rows_synthetic")
    value = f"{_int(synthetic)} synthetic" if _real(synthetic) else "<span class=\"na\">not stated</span>"
    parts = []
    if _real(data.get("input_rows")):
        parts.append(f"from {_int(data['input_rows'])} input rows")
    if _real(data.get("rows_train")):
        parts.append(f"{_int(data['rows_train'])} for training")
    if _real(data.get("rows_holdout")):
        parts.append(f"{_int(data['rows_holdout'])} held out for the audit" if data["rows_holdout"] else "no holdout")
    return _tile("Rows", value, ", ".join(parts) or "row counts not stated")


# --------------------------------------------------------------------------- privacy


def _privacy_section(p: Mapping[str, Any]) -> str:
    privacy = _map(p.get("privacy"))
    out = ["<section id=\"privacy\">", "<h2>Privacy budget</h2>"]
    if not privacy:
        return "\n".join(out + ["<p class=\"na\">The report holds no privacy section.</p>", "</section>"])
    facts = [
        ("Target ε", _g(privacy.get("epsilon"))),
        ("ε spent", _spent(privacy.get("epsilon_spent"))),
        ("δ", _sci(privacy.get("delta"))),
        ("Accountant", _e(" — ".join(str(x) for x in (privacy.get("accountant"), privacy.get("accountant_detail"))
                                     if x))),
        ("Unit of privacy", _e(privacy.get("unit") or "not stated")),
    ]
    out.append(_key_table(facts))
    budget = [line for line in _seq(privacy.get("budget")) if isinstance(line, Mapping)]
    if not budget:
        out.append("<p class=\"na\">The report lists no budget lines.</p>")
        return "\n".join(out + ["</section>"])
    out.append(
        "<p class=\"explain\">Every step that read the real rows, in the order it ran. The ε column is "
        "<b>cumulative</b>: the accountant's ε for this step composed with every step above it, so the last line "
        "is the total spent; the lines are not to be added up. δ is the whole release's δ.</p>"
    )
    rows = []
    for line in budget:
        rows.append(
            "<tr>"
            f"<td>{_e(line.get('step', ''))}</td><td>{_e(line.get('mechanism', ''))}</td>"
            f"<td class=\"num\">{_spent(line.get('epsilon'))}</td><td class=\"num\">{_sci(line.get('delta'))}</td>"
            f"<td class=\"params\">{_parameters(line.get('parameters'))}</td>"
            "</tr>"
        )
    out.append(
        "<table><thead><tr><th>Step</th><th>Mechanism</th><th class=\"num\">Cumulative ε after the step</th>"
        "<th class=\"num\">δ</th><th>Parameters</th></tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>"
    )
    bar = _budget_bar(budget, privacy.get("epsilon"))
    if bar:
        out.append(
            "<figure>" + bar + "<figcaption class=\"explain\">How the budget filled up: each segment is how much a "
            "step raised the cumulative ε (composition is not additive, so a segment depends on the steps before "
            "it); the black line is the target ε.</figcaption></figure>"
        )
    return "\n".join(out + ["</section>"])


def _parameters(parameters: Any) -> str:
    if not isinstance(parameters, Mapping) or not parameters:
        return ""
    items = []
    for key, value in parameters.items():
        if isinstance(value, Mapping):
            shown = f"{len(value)} entries"
        elif isinstance(value, (list, tuple)):
            shown = f"{len(value)} items"
        else:
            shown = _plain(value)
        items.append(f"{_e(key)} = {shown}")
    return "; ".join(items)


def _budget_bar(budget: Sequence[Mapping[str, Any]], target: Any) -> str:
    cumulative = [line.get("epsilon") for line in budget]
    if not cumulative or not all(_real(x) and x >= 0 for x in cumulative):
        return ""
    top = max([*cumulative, target if _real(target) else 0.0])
    if not top > 0:
        return ""
    width, left, bar_width = 720, 10, 700
    scale = bar_width / top
    parts, previous, legend = [], 0.0, []
    for i, (line, value) in enumerate(zip(budget, cumulative)):
        colour = _STEP_COLOURS[i % len(_STEP_COLOURS)]
        increment = max(value - previous, 0.0)
        x = left + previous * scale
        parts.append(
            f"<rect x=\"{x:.1f}\" y=\"6\" width=\"{max(increment * scale, 0.5):.1f}\" height=\"22\" fill=\"{colour}\">"
            f"<title>{_e(line.get('step', ''))}: cumulative ε {_spent(value)}</title></rect>"
        )
        legend.append((f"{line.get('step', '')} (to {_spent(value)})", colour))
        previous = max(previous, value)
    if _real(target):
        x = left + target * scale
        parts.append(f"<line x1=\"{x:.1f}\" y1=\"2\" x2=\"{x:.1f}\" y2=\"32\" stroke=\"#000\" stroke-width=\"2\"/>")
    parts += _axis_ticks(left, bar_width, top, y=32)
    svg = _svg(width, 52, parts, "Cumulative privacy budget per step")
    return svg + _legend(legend)


# --------------------------------------------------------------------------- quality


def _quality_section(p: Mapping[str, Any]) -> str:
    quality = _map(p.get("quality"))
    out = ["<section id=\"quality\">", "<h2>Quality</h2>"]
    if not quality:
        return "\n".join(out + ["<p class=\"na\">The report holds no quality audit.</p>", "</section>"])
    out.append("<p class=\"explain\">How closely the synthetic rows follow the real training rows. None of these "
               "figures is differentially private; they are aggregates for the reviewer.</p>")
    facts = [
        ("SDMetrics quality score", _pct(quality.get("sdmetrics_score"), 1),
         "mean of the two below; 100% means the same distributions"),
        ("Column shapes", _pct(quality.get("column_shapes"), 1), "similarity of each column's distribution"),
        ("Column pair trends", _pct(quality.get("column_pair_trends"), 1),
         "similarity of each pair's correlation or contingency table"),
        ("Mean total-variation distance, 1-way", _num(quality.get("tvd_1way")),
         "share of probability mass in the wrong place per column; 0 is best"),
        ("Mean total-variation distance, 2-way", _num(quality.get("tvd_2way")), "the same per pair of columns"),
        ("Detection AUROC", _num(quality.get("detection_auc")),
         "how well a classifier tells real rows from synthetic ones; 0.5 = indistinguishable"),
    ]
    if "frechet_distance" in quality:  # an image release: its own measures, no per-column plots
        facts = [
            ("Fréchet distance", _num(quality.get("frechet_distance"), 3), _e(quality.get("frechet_distance_note", ""))),
            ("Fréchet distance between two halves of the real training images",
             _num(quality.get("frechet_distance_floor"), 3), "sampling-noise reference for the line above"),
            ("SDMetrics quality score", _na(), _e(quality.get("sdmetrics_note", "not applicable to images"))),
        ]
    out.append("<table><thead><tr><th>Measure</th><th class=\"num\">Value</th><th>Meaning</th></tr></thead><tbody>"
               + "".join(f"<tr><td>{k}</td><td class=\"num\">{v}</td><td>{m}</td></tr>" for k, v, m in facts)
               + "</tbody></table>")
    out.append(_utility_table(_map(quality.get("ml_utility"))))
    details = _map(quality.get("details"))
    out.append(_distributions(details))
    out.append(_pair_heatmap(details))
    out.append(_column_table(details))
    return "\n".join(x for x in out if x) + "\n</section>"


def _utility_table(utility: Mapping[str, Any]) -> str:
    if not utility:
        return "<p class=\"na\">ML utility: not measured (no target column, or no holdout to test on).</p>"
    regression = utility.get("task") == "regression"
    metrics = [("r2", "R²")] if regression else [("auroc", "AUROC"), ("accuracy", "Accuracy")]
    if not regression and not _real(_get(utility, "synthetic", "auroc")):
        metrics = [("accuracy", "Accuracy")]
    head = "".join(f"<th class=\"num\">{name}</th>" for _, name in metrics)
    rows = "".join(
        f"<tr><td>{label}</td>" + "".join(f"<td class=\"num\">{_num(_get(utility, key, m))}</td>" for m, _ in metrics)
        + "</tr>"
        for key, label in (("synthetic", "trained on the synthetic rows"),
                           ("real", "trained on the real training rows"))
    )
    target = _e(utility.get("target", ""))
    return (
        f"<h3>ML utility: predicting {target} ({_e(utility.get('task', ''))})</h3>"
        "<p class=\"explain\">The same model trained once on the synthetic rows and once on the real training rows, "
        "both tested on real holdout rows neither saw; the gap is the price of using the synthetic copy.</p>"
        f"<table><thead><tr><th>Model</th>{head}</tr></thead><tbody>{rows}</tbody></table>"
    )


def _distributions(details: Mapping[str, Any]) -> str:
    distributions = _map(details.get("distributions"))
    head = "<h3>Distribution of each column</h3>"
    if not distributions:
        return head + "<p class=\"na\">The audit holds no per-column distributions.</p>"
    shapes = {str(row.get("Column")): row for row in _seq(details.get("column_shapes")) if isinstance(row, Mapping)}
    tvd = _map(details.get("tvd_per_column"))
    figures = []
    for name, entry in distributions.items():
        if not isinstance(entry, Mapping):
            continue
        score = _get(shapes, str(name), "Score")
        caption = f"<b>{_e(name)}</b> <span class=\"params\">{_e(entry.get('kind', ''))}"
        if _real(tvd.get(name)):
            caption += f" · TVD {_num(tvd[name])}"
        if _real(score):
            caption += f" · shape score {_pct(score, 1)}"
        caption += "</span>"
        figures.append(f"<figure class=\"dist\"><figcaption>{caption}</figcaption>{_bars_svg(name, entry)}</figure>")
    return (
        head
        + "<p class=\"explain\">For each column, the share of real training rows (blue, upper bar) and of synthetic "
        "rows (orange, lower bar) in each category or range; bars of equal length mean the release reproduces that "
        "column. Only values held by at least 5 real rows are named and numbers are cut on a round grid inside the "
        "real range, so no rare or extreme real value appears; the rest is under “other values”.</p>"
        + _legend([("real (training rows)", REAL_COLOUR), ("synthetic", SYNTHETIC_COLOUR)])
        + "<div class=\"grid\">" + "\n".join(figures) + "</div>"
    )


def _bars_svg(name: Any, entry: Mapping[str, Any]) -> str:
    rows: list[tuple[str, Any, Any, bool]] = [
        (str(label), real, synthetic, False)
        for label, real, synthetic in zip(
            _seq(entry.get("labels")), _seq(entry.get("real")), _seq(entry.get("synthetic"))
        )
    ]
    for key, label in (("other", "other values"), ("missing", "missing")):
        extra = _map(entry.get(key))
        if any(_real(extra.get(t)) and extra[t] > 0 for t in ("real", "synthetic")):
            rows.append((label, extra.get("real"), extra.get("synthetic"), True))
    if not rows:
        return "<p class=\"na\">no values to show</p>"
    shares = [v for _, r, s, _ in rows for v in (r, s) if _real(v)]
    top = _nice_ceiling(max(shares, default=0.0) or 1.0)
    label_width, left, width, row_height, top_margin = 150, 154, 370, 15, 14
    bar_width = width - left - 8
    height = top_margin + row_height * len(rows) + 4
    parts = []
    for tick, anchor in ((0.0, "middle"), (top / 2, "middle"), (top, "end")):
        x = left + bar_width * tick / top
        parts.append(f"<line x1=\"{x:.1f}\" y1=\"{top_margin - 2}\" x2=\"{x:.1f}\" y2=\"{height - 2}\" "
                     "stroke=\"#d0d7de\" stroke-width=\"1\"/>")
        parts.append(f"<text x=\"{x:.1f}\" y=\"{top_margin - 4}\" font-size=\"9\" text-anchor=\"{anchor}\">"
                     f"{_pct(tick, 0 if top >= 0.1 else 1)}</text>")
    for i, (label, real, synthetic, special) in enumerate(rows):
        y = top_margin + i * row_height
        shown = label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "…"
        style = " font-style=\"italic\" fill=\"#57606a\"" if special else ""
        tip = f"{label}: real {_share_text(real)}, synthetic {_share_text(synthetic)}"
        parts.append(f"<g><title>{_e(tip)}</title>"
                     f"<text x=\"{label_width}\" y=\"{y + 10.5}\" font-size=\"10\" text-anchor=\"end\"{style}>"
                     f"{_e(shown)}</text>"
                     + _bar(left, y + 1, real, top, bar_width, REAL_COLOUR)
                     + _bar(left, y + 7, synthetic, top, bar_width, SYNTHETIC_COLOUR)
                     + "</g>")
    return _svg(width, height, parts, f"Real and synthetic distribution of {name}")


def _bar(x: float, y: float, share: Any, top: float, width: float, colour: str) -> str:
    if not _real(share) or share <= 0:
        return ""
    length = max(width * min(share / top, 1.0), 1.0)
    return f"<rect x=\"{x}\" y=\"{y:.1f}\" width=\"{length:.1f}\" height=\"6\" fill=\"{colour}\"/>"


def _pair_heatmap(details: Mapping[str, Any]) -> str:
    head = "<h3>Pairs of columns</h3>"
    values, columns, what = _pair_values(details)
    if len(columns) < 2 or not values:
        return head + "<p class=\"na\">No pair figures to show (fewer than two columns, or none computed).</p>"
    top = max(0.1, math.ceil(max(values.values()) * 10) / 10)
    n = len(columns)
    cell = max(10.0, min(30.0, 600.0 / (n - 1)))
    label_width = 140
    grid = cell * (n - 1)
    width, height = label_width + grid + 90, grid + 120
    parts = []
    for i in range(1, n):
        y = (i - 1) * cell
        parts.append(f"<text x=\"{label_width - 6}\" y=\"{y + cell / 2 + 4:.1f}\" font-size=\"11\" "
                     f"text-anchor=\"end\">{_e(_short(columns[i], 20))}</text>")
        for j in range(i):
            value = values.get((columns[j], columns[i]))
            x = label_width + j * cell
            fill = _heat(value / top) if value is not None else "#eeeeee"
            tip = f"{columns[j]} × {columns[i]}: " + (f"{value:.3f}" if value is not None else "not computed")
            parts.append(f"<rect x=\"{x:.1f}\" y=\"{y:.1f}\" width=\"{cell:.1f}\" height=\"{cell:.1f}\" "
                         f"fill=\"{fill}\" stroke=\"#d0d7de\" stroke-width=\"0.5\"><title>{_e(tip)}</title></rect>")
            if value is not None and cell >= 24:
                ink = "#fff" if value / top > 0.6 else "#1f2328"
                parts.append(f"<text x=\"{x + cell / 2:.1f}\" y=\"{y + cell / 2 + 3.5:.1f}\" font-size=\"9\" "
                             f"text-anchor=\"middle\" fill=\"{ink}\">{round(value * 100)}</text>")
    for j in range(n - 1):
        x, y = label_width + j * cell + cell / 2, grid + 8
        parts.append(f"<text x=\"{x:.1f}\" y=\"{y:.1f}\" font-size=\"11\" text-anchor=\"end\" "
                     f"transform=\"rotate(-50 {x:.1f} {y:.1f})\">{_e(_short(columns[j], 20))}</text>")
    # The colour scale.
    legend_x = label_width + grid + 24
    for k in range(10):
        parts.append(f"<rect x=\"{legend_x}\" y=\"{k * 12}\" width=\"14\" height=\"12\" fill=\"{_heat(1 - k / 9)}\"/>")
    parts.append(f"<text x=\"{legend_x + 18}\" y=\"10\" font-size=\"10\">{_num(top, 1)}</text>")
    parts.append(f"<text x=\"{legend_x + 18}\" y=\"120\" font-size=\"10\">0</text>")
    svg = _svg(width, height, parts, "Difference between real and synthetic pairs of columns")
    return (
        head
        + f"<p class=\"explain\">{what} Each cell is one pair of columns; white means the synthetic rows keep "
        "that pair's joint distribution, dark red that they do not (numbers in cells are ×100).</p>"
        + f"<figure>{svg}</figure>"
    )


def _pair_values(details: Mapping[str, Any]) -> tuple[dict[tuple[str, str], float], list[str], str]:
    """Per-pair differences, the column order, and a sentence saying what they are.

    The total-variation distance of every pair is complete; SDMetrics leaves out pairs
    whose real association is weak, so its scores (as 1 - score) are the fallback.
    """
    columns = [str(c) for c in _map(details.get("tvd_per_column"))]
    tvd = _map(details.get("tvd_per_pair"))
    values: dict[tuple[str, str], float] = {}
    if tvd and columns:
        for i, a in enumerate(columns):
            for b in columns[i + 1:]:
                value = tvd.get(f"{a} | {b}")
                if _real(value):
                    values[(a, b)] = float(value)
        what = ("Total-variation distance between the real and the synthetic joint distribution of each pair "
                "(numbers in 20 quantile bins of the real data): 0 is a perfect match, 1 no overlap.")
        return values, columns, what
    rows = [row for row in _seq(details.get("column_pair_trends")) if isinstance(row, Mapping)]
    for row in rows:
        a, b = str(row.get("Column 1")), str(row.get("Column 2"))
        for name in (a, b):
            if name not in columns:
                columns.append(name)
        if _real(row.get("Score")):
            values[(a, b)] = values[(b, a)] = 1.0 - float(row["Score"])
    what = ("1 − the SDMetrics pair-trend score of each pair (correlation similarity for numbers, contingency "
            "similarity otherwise): 0 is a perfect match; grey pairs SDMetrics did not score.")
    return values, columns, what


def _column_table(details: Mapping[str, Any]) -> str:
    shapes = [row for row in _seq(details.get("column_shapes")) if isinstance(row, Mapping)]
    tvd = _map(details.get("tvd_per_column"))
    distributions = _map(details.get("distributions"))
    names = [str(row.get("Column")) for row in shapes] or [str(c) for c in tvd]
    if not names:
        return ""
    by_name = {str(row.get("Column")): row for row in shapes}
    rows = []
    for name in names:
        shape = _map(by_name.get(name))
        missing = _map(_map(distributions.get(name)).get("missing"))
        rows.append(
            f"<tr><td>{_e(name)}</td><td>{_e(_map(distributions.get(name)).get('kind', ''))}</td>"
            f"<td>{_e(shape.get('Metric', ''))}</td><td class=\"num\">{_num(shape.get('Score'))}</td>"
            f"<td class=\"num\">{_num(tvd.get(name))}</td><td class=\"num\">{_pct(missing.get('real'), 1)}</td>"
            f"<td class=\"num\">{_pct(missing.get('synthetic'), 1)}</td></tr>"
        )
    return (
        "<h3>Per-column figures</h3><p class=\"explain\">SDMetrics' shape score (KS complement for numbers, TV "
        "complement for categories; 1 is best), the total-variation distance (0 is best) and the share of missing "
        "values in each table.</p>"
        "<table><thead><tr><th>Column</th><th>Kind</th><th>SDMetrics metric</th><th class=\"num\">Score</th>"
        "<th class=\"num\">TVD</th><th class=\"num\">Missing (real)</th><th class=\"num\">Missing (synthetic)</th>"
        "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


# --------------------------------------------------------------------------- leakage


def _leakage_section(p: Mapping[str, Any]) -> str:
    leakage = _map(p.get("leakage"))
    out = ["<section id=\"leakage\">", "<h2>Leakage</h2>"]
    if not leakage:
        out.append("<p class=\"na\">The report holds no leakage audit.</p>")
        return "\n".join(out + [_audit_notes(p, leakage), "</section>"])
    state, word = _leak_state(leakage)
    out.append(f"<div class=\"callout {state}\"><span class=\"badge {state}\">{word}</span> "
               f"{_e(leakage.get('verdict') or 'no verdict stated')}</div>")
    out.append("<p class=\"explain\">The audit plays an attacker who holds the synthetic rows and tries to tell the "
               "real rows the generator trained on (members) from real rows it never saw (the holdout, "
               "non-members).</p>")
    attacks = {name: a for name, a in _map(leakage.get("attacks")).items() if isinstance(a, Mapping)}
    if attacks:
        out.append(_roc_figure(attacks))
        out.append(_attack_table(attacks, leakage))
    else:
        out.append("<p class=\"na\">Membership inference was not run (it needs holdout rows).</p>")
    out.append(_epsilon_figure(leakage))
    out.append(_copies(_map(leakage.get("exact_copies"))))
    out.append(_memorisation(_map(leakage.get("memorisation"))))
    out.append(_rare(_map(leakage.get("rare_values"))))
    out.append(_audit_notes(p, leakage))
    return "\n".join(x for x in out if x) + "\n</section>"


def _roc_figure(attacks: Mapping[str, Mapping[str, Any]]) -> str:
    size, left, bottom, top_pad, right_pad = 300, 46, 40, 10, 12
    width, height = left + size + right_pad, top_pad + size + bottom
    parts = []

    def point(fpr: float, tpr: float) -> str:
        return f"{left + fpr * size:.1f},{top_pad + (1 - tpr) * size:.1f}"

    for tick in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        x, y = left + tick * size, top_pad + (1 - tick) * size
        parts.append(f"<line x1=\"{x:.1f}\" y1=\"{top_pad}\" x2=\"{x:.1f}\" y2=\"{top_pad + size}\" "
                     "stroke=\"#eaeef2\"/>")
        parts.append(f"<line x1=\"{left}\" y1=\"{y:.1f}\" x2=\"{left + size}\" y2=\"{y:.1f}\" stroke=\"#eaeef2\"/>")
        parts.append(f"<text x=\"{x:.1f}\" y=\"{top_pad + size + 14}\" font-size=\"10\" text-anchor=\"middle\">"
                     f"{tick:g}</text>")
        parts.append(f"<text x=\"{left - 5}\" y=\"{y + 3.5:.1f}\" font-size=\"10\" text-anchor=\"end\">{tick:g}</text>")
    parts.append(f"<rect x=\"{left}\" y=\"{top_pad}\" width=\"{size}\" height=\"{size}\" fill=\"none\" "
                 "stroke=\"#57606a\"/>")
    parts.append(f"<line x1=\"{left}\" y1=\"{top_pad + size}\" x2=\"{left + size}\" y2=\"{top_pad}\" "
                 "stroke=\"#8c959f\" stroke-dasharray=\"5 4\"><title>chance: an attack that guesses</title></line>")
    parts.append(f"<text x=\"{left + size / 2}\" y=\"{height - 6}\" font-size=\"11\" text-anchor=\"middle\">"
                 "false-positive rate (non-members called members)</text>")
    parts.append(f"<text x=\"12\" y=\"{top_pad + size / 2}\" font-size=\"11\" text-anchor=\"middle\" "
                 f"transform=\"rotate(-90 12 {top_pad + size / 2})\">true-positive rate (members found)</text>")
    legend = [("chance", "#8c959f")]
    drawn = 0
    for i, (name, attack) in enumerate(attacks.items()):
        roc = _map(attack.get("roc"))
        fpr, tpr = _seq(roc.get("fpr")), _seq(roc.get("tpr"))
        pairs = [(f, t) for f, t in zip(fpr, tpr) if _real(f) and _real(t)]
        if len(pairs) < 2:
            continue
        colour = _ATTACK_COLOURS[i % len(_ATTACK_COLOURS)]
        points = " ".join(point(min(max(f, 0), 1), min(max(t, 0), 1)) for f, t in pairs)
        auroc = f"{attack['auroc']:.3f}" if _real(attack.get("auroc")) else "n/a"
        parts.append(f"<polyline points=\"{points}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\">"
                     f"<title>{_e(_attack_name(name))}: AUROC {auroc}</title></polyline>")
        legend.append((f"{_attack_name(name)} (AUROC {auroc})", colour))
        drawn += 1
    if not drawn:
        return "<p class=\"na\">The report holds no ROC curves.</p>"
    svg = _svg(width, height, parts, "ROC curves of the membership-inference attacks")
    return (
        "<h3>Membership-inference attacks</h3>"
        f"<figure class=\"side\">{svg}<figcaption>{_legend(legend)}<p class=\"explain\">Each curve shows how many "
        "training rows an attack finds (up) for how many holdout rows it wrongly accuses (right); a curve on the "
        "dashed diagonal means the attack does no better than guessing; one bowed towards the top left means the "
        "synthetic rows give members away.</p></figcaption></figure>"
    )


def _attack_table(attacks: Mapping[str, Mapping[str, Any]], leakage: Mapping[str, Any]) -> str:
    rows = []
    for name, attack in attacks.items():
        low_fpr = {}
        for entry in _seq(attack.get("tpr_at_fpr")):
            if isinstance(entry, Mapping) and _real(entry.get("target_fpr")):
                low_fpr[float(entry["target_fpr"])] = entry
        cells = []
        for target in (0.01, 0.001):
            entry = _map(low_fpr.get(target))
            cells.append(f"<td class=\"num\">{_pct(entry.get('tpr'), 2)} {_interval(entry.get('tpr_ci'), percent=True)}"
                         "</td>")
        best = " (best)" if name == leakage.get("best_attack") else ""
        rows.append(
            f"<tr><td><b>{_e(_attack_name(name))}</b>{best}<div class=\"params\">{_e(attack.get('description', ''))}"
            f"</div></td><td class=\"num\">{_num(attack.get('auroc'))}</td>"
            f"<td class=\"num\">{_interval(attack.get('auroc_ci'))}</td>{''.join(cells)}</tr>"
        )
    counts = _map(leakage.get("rows"))
    sizes = ""
    if counts:
        sizes = (f" Scored: {_int(counts.get('members'))} members and {_int(counts.get('non_members'))} "
                 f"non-members; density reference: {_int(counts.get('reference'))} holdout rows.")
    return (
        "<p class=\"explain\">AUROC is the chance that the attack ranks a random member above a random non-member "
        "(0.5 = chance). The true-positive rate at a false-positive rate of 1% and 0.1% is what matters for privacy: "
        f"an attack that is sure about a few people harms those people even at an AUROC near 0.5.{sizes}</p>"
        "<table><thead><tr><th>Attack</th><th class=\"num\">AUROC</th><th class=\"num\">95% CI</th>"
        "<th class=\"num\">TPR at FPR 1% [95% CI]</th><th class=\"num\">TPR at FPR 0.1% [95% CI]</th></tr></thead>"
        "<tbody>" + "".join(rows) + "</tbody></table>"
    )


def _epsilon_figure(leakage: Mapping[str, Any]) -> str:
    bound = leakage.get("empirical_epsilon_lower_bound")
    claimed = leakage.get("claimed_epsilon")
    certifiable = leakage.get("max_certifiable_epsilon")
    head = "<h3>Empirical ε lower bound</h3>"
    if not _real(bound):
        return head + "<p class=\"na\">Not computed (it needs holdout rows).</p>"
    detail = _map(leakage.get("epsilon_bound"))
    marks = [v for v in (bound, claimed, certifiable) if _real(v)]
    top = _nice_ceiling(max(marks) * 1.1 or 1.0)
    width, left, span = 720, 10, 690
    violation = _real(claimed) and bound > claimed

    def x(value: float) -> float:
        return left + span * min(value, top) / top

    colour = "#b42318" if violation else "#1a7f37"
    # Lines first, then labels (with a white halo) on top of them.
    lines = [f"<rect x=\"{left}\" y=\"34\" width=\"{max(x(bound) - left, 2):.1f}\" height=\"16\" fill=\"{colour}\">"
             f"<title>lower bound {_num(bound, 2)}</title></rect>"]
    text = f"proved by the attack: ε ≥ {_num(bound, 2)}"
    if x(bound) > width / 2:  # a long bar holds its label
        labels = [f"<text x=\"{x(bound) - 6:.1f}\" y=\"46\" font-size=\"11\" text-anchor=\"end\" fill=\"#fff\">"
                  f"{text}</text>"]
    else:
        labels = [f"<text x=\"{x(bound) + 6:.1f}\" y=\"46\" font-size=\"11\"{_HALO}>{text}</text>"]
    if _real(claimed):
        lines.append(f"<line x1=\"{x(claimed):.1f}\" y1=\"14\" x2=\"{x(claimed):.1f}\" y2=\"62\" stroke=\"#000\" "
                     "stroke-width=\"2.5\"/>")
        labels.append(f"<text x=\"{x(claimed):.1f}\" y=\"11\" font-size=\"11\" "
                      f"text-anchor=\"{_anchor(x(claimed), width)}\"{_HALO}>claimed ε = {_g(claimed)}</text>")
    if _real(certifiable):
        lines.append(f"<line x1=\"{x(certifiable):.1f}\" y1=\"24\" x2=\"{x(certifiable):.1f}\" y2=\"62\" "
                     "stroke=\"#57606a\" stroke-width=\"2\" stroke-dasharray=\"5 3\"/>")
        labels.append(f"<text x=\"{x(certifiable):.1f}\" y=\"76\" font-size=\"11\" fill=\"#57606a\" "
                      f"text-anchor=\"{_anchor(x(certifiable), width)}\"{_HALO}>most this audit can show = "
                      f"{_num(certifiable, 2)}</text>")
    parts = lines + labels
    parts += _axis_ticks(left, span, top, y=86)
    svg = _svg(width, 106, parts, "Empirical epsilon lower bound beside the claimed epsilon")
    facts = [
        ("Empirical ε lower bound (95% confidence)", _num(bound, 3)),
        ("Claimed ε", _g(claimed) if _real(claimed) else "none stated"),
        ("Largest ε this audit could certify", _num(certifiable, 2)),
        ("Attack used", _e(_attack_name(detail.get("attack", "")))),
        ("Its TPR and FPR on the evaluation half", f"{_pct(detail.get('tpr'), 2)} and {_pct(detail.get('fpr'), 2)}"),
        ("δ used", _sci(detail.get("delta", leakage.get("delta")))),
    ]
    method = detail.get("method")
    return (
        head
        + f"<figure>{svg}<figcaption class=\"explain\">The bar is the ε that the best attack proves at 95% "
        "confidence; the privacy claim is violated only if the bar passes the black line, and no audit of this size "
        "could show more than the dashed line, so a short bar is not proof of privacy.</figcaption></figure>"
        + _key_table(facts)
        + (f"<p class=\"explain\">Method: {_e(method)}.</p>" if method else "")
    )


def _copies(copies: Mapping[str, Any]) -> str:
    if not copies:
        return ""
    matched = _map(copies.get("matched"))
    facts = [
        ("Synthetic rows identical to a training row", _pct(copies.get("train_share"), 2)),
        ("Synthetic rows identical to a holdout row", _pct(copies.get("holdout_share"), 2)
         if _real(copies.get("holdout_share")) else "not measured (no holdout)"),
    ]
    if _real(matched.get("p_value")):
        facts.append(("Copies training rows more often than holdout rows?",
                      f"{'yes' if matched.get('significant') else 'no'} (p = {_g(matched['p_value'])}, on "
                      f"{_int(matched.get('rows_each'))} rows of each)"))
    return ("<h3>Exact copies</h3><p class=\"explain\">A synthetic row identical to a real row may be a copy; "
            "comparing with the holdout tells copies apart from rows that are merely common.</p>" + _key_table(facts))


def _memorisation(memo: Mapping[str, Any]) -> str:
    """Images: quantiles of the distance to the closest training image (never the images)."""
    synthetic, holdout = _map(memo.get("synthetic_to_train")), _map(memo.get("holdout_to_train"))
    if not synthetic:
        return ""
    head = "".join(f"<th class=\"num\">{_e(q)}</th>" for q in synthetic)

    def cells(values: Mapping[str, Any]) -> str:
        return "".join(f"<td class=\"num\">{_num(values.get(q))}</td>" for q in synthetic)

    rows = f"<tr><td>synthetic images</td>{cells(synthetic)}</tr>"
    if holdout:
        rows += f"<tr><td>holdout images (never seen)</td>{cells(holdout)}</tr>"
    share = memo.get("share_closer_than_holdout_q01")
    tail = (f"<p>{_pct(share, 1)} of synthetic images are closer to a training image than 99% of holdout images "
            "are (about 1% expected without memorisation).</p>") if _real(share) else ""
    return ("<h3>Memorisation</h3><p class=\"explain\">Distance from each image to its closest training image ("
            f"{_e(memo.get('metric', ''))}), as quantiles; the report never shows a real image.</p>"
            f"<table><thead><tr><th>Images</th>{head}</tr></thead><tbody>{rows}</tbody></table>{tail}")


def _rare(rare: Mapping[str, Any]) -> str:
    if not rare:
        return ""
    k = rare.get("k")
    fewer = f"fewer than {_e(k)}"
    sentences = []
    if rare.get("rare_values"):
        sentences.append(f"{_int(rare['rare_values'])} synthetic category value(s), in {_int(rare.get('rare_rows'))} "
                         f"synthetic rows ({_pct(rare.get('rare_rows_share'), 2)}), are held by {fewer} training rows.")
    if rare.get("unseen_values"):
        sentences.append(f"{_int(rare['unseen_values'])} synthetic category value(s), in "
                         f"{_int(rare.get('unseen_rows'))} synthetic rows, occur in no training row.")
    text = " ".join(sentences) or (f"No synthetic category value is held by {fewer} training rows, and every one "
                                   "occurs in the training rows.")
    columns = {name: c for name, c in _map(rare.get("columns")).items() if isinstance(c, Mapping)}
    table = ""
    if columns:
        table = ("<table><thead><tr><th>Column</th><th class=\"num\">Rare values</th><th class=\"num\">Their rows"
                 "</th><th class=\"num\">Unseen values</th><th class=\"num\">Their rows</th></tr></thead><tbody>"
                 + "".join(f"<tr><td>{_e(name)}</td><td class=\"num\">{_int(c.get('rare_values'))}</td>"
                           f"<td class=\"num\">{_int(c.get('rare_rows'))}</td>"
                           f"<td class=\"num\">{_int(c.get('unseen_values'))}</td>"
                           f"<td class=\"num\">{_int(c.get('unseen_rows'))}</td></tr>" for name, c in columns.items())
                 + "</tbody></table>")
    return ("<h3>Rare values</h3><p class=\"explain\">A category value that only a handful of real people hold is "
            f"a fragment of their records; the values are counted here, never listed.</p><p>{text}</p>" + table)


def _audit_notes(p: Mapping[str, Any], leakage: Mapping[str, Any]) -> str:
    audit = _map(p.get("audit"))
    items = []
    if leakage.get("note"):
        items.append(f"<li><b>{_e(leakage['note'])}</b></li>")
    items += [f"<li>{_e(note)}</li>" for note in _seq(audit.get("notes"))]
    for entry in _seq(audit.get("subsampled")):
        if not isinstance(entry, Mapping):
            continue
        used, total = _map(entry.get("rows_used")), _map(entry.get("rows_total"))
        counts = ", ".join(f"{_int(used.get(role))} of {_int(total.get(role))} {_e(str(role).replace('_', ' '))} rows"
                           for role in used)
        items.append(f"<li>Sub-sampled for {_e(entry.get('metric', ''))}: {counts}</li>")
    if not items:
        return ""
    return "<h3>About this audit</h3><ul class=\"tight\">" + "".join(items) + "</ul>"


# --------------------------------------------------------------------------- provenance


def _provenance_section(p: Mapping[str, Any]) -> str:
    data, signing = _map(p.get("data")), _map(p.get("signing"))
    out = ["<section id=\"provenance\">", "<h2>Input, software and signature</h2>"]
    fraction = data.get("holdout_fraction")
    facts = [
        ("Input file", _e(data.get("input_name") or "not stated")),
        ("Input SHA-256", f"<span class=\"mono\">{_e(data.get('input_sha256') or 'not stated')}</span>"),
        ("Input rows", _int(data.get("input_rows"))),
        ("Training rows (seen by the generator)", _int(data.get("rows_train"))),
        ("Holdout rows (seen only by the audit)", _int(data.get("rows_holdout"))
         + (f" ({_pct(fraction, 0)} of the input)" if _real(fraction) and fraction > 0 else "")),
        ("Synthetic rows released", _int(data.get("rows_synthetic"))),
        ("Released files", _e(", ".join(str(f) for f in _seq(p.get("files")))) or "not stated"),
    ]
    out.append("<p class=\"explain\">The fingerprint identifies the exact input file: anyone holding it can "
               "recompute its SHA-256 and compare.</p>" + _key_table(facts))
    columns = [c for c in _seq(data.get("columns")) if isinstance(c, Mapping)]
    if columns:
        out.append(f"<h3>Columns ({len(columns)})</h3><p>"
                   + ", ".join(f"{_e(c.get('name', ''))} <span class=\"params\">({_e(c.get('type', ''))})</span>"
                               for c in columns) + "</p>")
    model = _map(p.get("model"))
    if model:
        params = _map(model.get("params"))
        out.append(f"<h3>Model: {_e(model.get('name', 'not stated'))}</h3>"
                   + (_key_table([(_e(k), _plain(v)) for k, v in params.items()]) if params else ""))
    software = _map(p.get("software"))
    if software:
        out.append("<h3>Software</h3>" + _key_table([(_e(k), _e(v)) for k, v in software.items()]))
    out.append("<h3>Signature</h3>")
    fingerprint = signing.get("public_key_fingerprint")
    out.append(_key_table([
        ("Algorithm", _e(signing.get("algorithm") or "not stated")),
        ("Public-key fingerprint", f"<span class=\"mono\">{_e(fingerprint or 'not stated')}</span>"),
    ]))
    out.append(
        "<p class=\"explain\">To check that this release is the one the data steward signed, obtain the steward's "
        "public key by a separate channel, check that its fingerprint is the one above, and run:</p>"
        "<pre>synthdata verify RELEASE_DIR --public-key KEY.pub.pem</pre>"
        "<p class=\"explain\">It checks the Ed25519 signature over report.json, that every released file has the "
        "SHA-256 listed there, and that no file was added; it exits 0 only if all hold.</p>"
    )
    return "\n".join(out + ["</section>"])


# --------------------------------------------------------------------------- SVG helpers


def _svg(width: float, height: float, parts: Iterable[str], label: str) -> str:
    return (
        f"<svg width=\"{width:.0f}\" height=\"{height:.0f}\" viewBox=\"0 0 {width:.0f} {height:.0f}\" role=\"img\" "
        f"aria-label=\"{_e(label)}\">" + "".join(parts) + "</svg>"
    )


def _axis_ticks(left: float, span: float, top: float, *, y: float) -> list[str]:
    parts = [f"<line x1=\"{left}\" y1=\"{y}\" x2=\"{left + span}\" y2=\"{y}\" stroke=\"#57606a\"/>"]
    for i in range(6):
        value = top * i / 5
        x = left + span * i / 5
        parts.append(f"<line x1=\"{x:.1f}\" y1=\"{y}\" x2=\"{x:.1f}\" y2=\"{y + 4}\" stroke=\"#57606a\"/>")
        parts.append(f"<text x=\"{x:.1f}\" y=\"{y + 15}\" font-size=\"10\" text-anchor=\"{_anchor(x, left + span)}\">"
                     f"{value:.3g}</text>")
    return parts


def _anchor(x: float, width: float) -> str:
    """Text anchor that keeps a label inside the drawing near either edge."""
    if x < 60:
        return "start"
    if x > width - 60:
        return "end"
    return "middle"


def _legend(items: Iterable[tuple[str, str]]) -> str:
    return "<div class=\"legend\">" + "".join(
        f"<span class=\"key\"><span class=\"swatch\" style=\"background:{colour}\"></span>{_e(label)}</span>"
        for label, colour in items
    ) + "</div>"


def _heat(fraction: float) -> str:
    """White (0) to dark red (1)."""
    f = min(max(fraction, 0.0), 1.0)
    r, g, b = (round(255 + (end - 255) * f) for end in (150, 20, 20))
    return f"#{r:02x}{g:02x}{b:02x}"


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^m at least ``value``."""
    if not value > 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    return next(m * 10.0**exponent for m in (1, 2, 2.5, 5, 10) if m * 10.0**exponent >= value * (1 - 1e-12))


# --------------------------------------------------------------------------- formatting


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _get(mapping: Any, *path: Any) -> Any:
    for key in path:
        if not isinstance(mapping, Mapping):
            return None
        mapping = mapping.get(key)
    return mapping


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _seq(value: Any) -> Sequence[Any]:
    return value if isinstance(value, (list, tuple)) else ()


def _real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _na() -> str:
    return "<span class=\"na\">n/a</span>"


def _num(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if _real(value) else _na()


def _pct(value: Any, digits: int = 1) -> str:
    return f"{100 * value:.{digits}f}%" if _real(value) else _na()


def _share_text(value: Any) -> str:
    """A share as plain text (for tooltips, which are escaped)."""
    return f"{100 * value:.2f}%" if _real(value) else "n/a"


def _int(value: Any) -> str:
    return f"{int(value):,}" if _real(value) else _na()


def _g(value: Any) -> str:
    return f"{value:.4g}" if _real(value) else _na()


def _spent(value: Any) -> str:
    """ε spent, rounded *down* to 6 significant digits: never shown above what was spent."""
    if not _real(value):
        return _na()
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    quantum = Decimal(1).scaleb(exponent - 5)
    text = format(Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_FLOOR), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _sci(value: Any) -> str:
    """A small number as 2.96 × 10⁻⁶ (HTML)."""
    if not _real(value):
        return _na()
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    if -3 <= exponent < 4:
        return f"{value:.3g}"
    mantissa = value / 10.0**exponent
    return f"{mantissa:.3g}×10<sup>{'−' if exponent < 0 else ''}{abs(exponent)}</sup>"


def _interval(value: Any, *, percent: bool = False) -> str:
    pair = _seq(value)
    if len(pair) != 2 or not all(_real(v) for v in pair):
        return ""
    show = (lambda v: f"{100 * v:.2f}%") if percent else (lambda v: f"{v:.3f}")
    return f"[{show(pair[0])}{_DASH}{show(pair[1])}]"


def _plain(value: Any) -> str:
    """A parameter value for a table cell."""
    if isinstance(value, bool) or value is None:
        return _e(value if value is not None else "none")
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if _real(value):
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        return f"{len(value)} entries"
    if isinstance(value, (list, tuple)):
        return f"{len(value)} items"
    return _e(_short(str(value), 80))


def _short(text: Any, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _attack_name(name: Any) -> str:
    return str(name).replace("_", " ")


def _key_table(facts: Iterable[tuple[str, str]]) -> str:
    """Two-column table; keys and values are HTML already."""
    return "<table><tbody>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts) + "</tbody></table>"
