"""The two report pages: drawn from their predicate alone, self-contained, escaped, tolerant of gaps.

The public page (``report.html``) is drawn from the public predicate as
:func:`synthdata.release.public_report` builds it, with a real ledger and real DP audit
figures; the steward's page (``audit.html``) from :func:`synthdata.release.steward_report`
around a real exact audit (:func:`synthdata.audit.audit`).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import math
import re
import shutil
import subprocess
import tomllib
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from synthdata.audit import audit
from synthdata.audit.private import AUDIT_STEP, release_audit_figures
from synthdata.privacy import GaussianRequest, NoiseSource, PrivacyLedger
from synthdata.release import public_report, steward_report
from synthdata.report import render_html, render_steward_html
from synthdata.report.formatting import FILTERS

from .audit.conftest import PLANTED, population

#: Text from the predicate that is also markup or an attribute: it must reach the page as inert text.
SCRIPT = "<script>alert(1)</script>"
ONLOAD = '"onload="alert(1)'
QUOTED = "x' onmouseover='alert(1)"
#: A column whose name and categories are all hostile.
HOSTILE_COLUMN = "<img src=x onerror=alert(1)>"
#: One person's extreme income: it must never reach the steward's page.
EXTREME = 987654321.0
NOT_FOR_RELEASE = "NOT FOR RELEASE — computed on the real data"
PUBLIC_SECTIONS = ["verdict", "privacy", "fidelity", "audit", "data", "model", "provenance"]
STEWARD_SECTIONS = ["verdict", "quality", "leakage", "notes", "provenance"]

#: Every element and attribute the pages may use: anything else (a script, an event handler) is an injection.
ELEMENTS = {"html", "head", "meta", "title", "style", "body", "main", "header", "footer", "section", "div", "span",
            "h1", "h2", "h3", "p", "b", "strong", "code", "pre", "sup", "ul", "li", "table", "colgroup", "col", "thead",
            "tbody", "tr", "th", "td", "figure", "figcaption", "dl", "dt", "dd", "svg", "rect", "line", "text",
            "polyline", "circle"}
ATTRIBUTES = {"lang", "charset", "http-equiv", "content", "name", "class", "id", "role", "aria-label", "aria-hidden",
              "width", "height", "viewbox", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "fill", "stroke",
              "stroke-width", "stroke-dasharray", "points", "font-size", "text-anchor", "transform"}
_VOID = {"meta", "col"}


# --------------------------------------------------------------------------- predicates


class _Model:
    """What public_report reads from a fitted model."""

    model_name = "tabular-gan"

    def __init__(self, ledger: PrivacyLedger, *, insecure_noise_seed: int | None = None):
        self.ledger_ = ledger
        self.insecure_noise_seed = insecure_noise_seed

    def get_params(self) -> dict:
        return {"epsilon": 1.0, "delta": None, "epochs": 4.0, "seed": 424242, "budget_split": {"audit": 0.05},
                SCRIPT: "x", "note": "<style>body{display:none}</style>"}


def _ledger(noise: NoiseSource | None = None) -> PrivacyLedger:
    """A ledger with a count, a planned Gaussian and the DP audit figures, as a release leaves it."""
    ledger = PrivacyLedger(epsilon=1.0, delta=1e-6, noise=noise)
    ledger.noisy_count("row count", 800, epsilon=0.05, parameters={"what": "rows"})
    ledger.plan(gaussians={"marginals": GaussianRequest(sensitivity=1.0, share=0.9),
                           AUDIT_STEP: GaussianRequest(sensitivity=math.sqrt(5), share=0.1)})
    ledger.noisy("marginals", np.zeros(6), sensitivity=1.0, mechanism="Gaussian mechanism on 2-way marginals",
                  parameters={"pairs": [["age", "city"], [SCRIPT, "label"]], "sigma_note": SCRIPT})
    return ledger


def _figures(ledger: PrivacyLedger) -> dict:
    rng = np.random.default_rng(0)
    figures = release_audit_figures(ledger, correct=rng.random(400) < 0.8, member_scores=rng.random(200),
                                    non_member_scores=rng.random(200), threshold=0.9, copies_train=1,
                                    copies_holdout=0, majority_share=0.6)
    figures["ml_utility"]["target"] = "label"
    return figures


COLUMNS = ["age", "income", "city", SCRIPT, ONLOAD, "label"]


def _table_modality(columns=COLUMNS):
    def data_section(model, count):  # the shape of TableModality.data_section
        return {"input_name": "train.csv", "rows_train_dp": 801, "rows_synthetic": count,
                "columns": [{"name": c, "type": "numerical", "integer": True} if c in ("age", "income")
                            else {"name": c, "type": "categorical"} for c in columns],
                "schema": "decided with differential privacy (the 'schema' budget line)",
                "excluded_columns": [QUOTED]}

    return SimpleNamespace(name="table", data_section=data_section,
                           steward_data=lambda train, holdout: {"input_rows": 1600, "rows_train": 800,
                                                                "rows_holdout": 800, "source": "data/train.csv"})


def _public_predicate(*, insecure: bool = False, columns=COLUMNS) -> dict:
    ledger = _ledger(NoiseSource(seed=7) if insecure else None)
    figures = _figures(ledger)
    per_column = {c: 0.01 * (i + 1) for i, c in enumerate(columns)}
    per_pair = {f"{columns[i]} | {columns[j]}": 0.02 * (i + j) for i in range(len(columns))
                for j in range(i + 1, len(columns)) if (i + j) % 2}
    public_audit = {
        "fidelity": {"tvd_1way_to_dp_histograms": 0.035, "tvd_2way_to_dp_marginals": 0.05,
                     "per_column": per_column, "per_pair": per_pair,
                     "note": "distances of the synthetic table to the model's own noisy measurements"},
        "figures": figures,
        "verdict": "no violation detected: membership attack AUC 0.500 (± 0.100 from the audit's own noise); "
                   "0.5 is chance",
    }
    model = _Model(ledger, insecure_noise_seed=7 if insecure else None)
    return public_report(_table_modality(columns), model, public_audit, count=800, holdout_fraction=0.5,
                         fingerprint={"algorithm": "HMAC-SHA256(steward secret, salt || content digest)",
                                      "salt": "ab" * 16, "mac": "0123abcd" * 8},
                         key_fingerprint="SHA256:" + "ef" * 32, files=["synthetic.csv", "report.html"])


def _train(n: int, seed: int):
    frame = population(n, seed)
    frame[HOSTILE_COLUMN] = np.where(frame["smoker"], SCRIPT, ONLOAD)  # both held by many rows: named in plots
    return frame


@pytest.fixture(scope="module")
def real():
    train = _train(800, 1)
    train.loc[5, "city"] = PLANTED  # one person's category value
    train.loc[7, "income"] = EXTREME  # one person's extreme number
    return {"train": train, "holdout": _train(800, 2), "other": _train(800, 3)}


def _steward_predicate(result: dict, public: dict) -> dict:
    predicate = steward_report(_table_modality(), None, result, None, None, public)
    predicate["release"] = {**predicate["release"], "directory": "train-release", "report_sha256": "9f" * 32}
    return predicate


@pytest.fixture(scope="module")
def public():
    return _public_predicate()


@pytest.fixture(scope="module")
def steward(real, public):
    result = audit(real["train"], real["other"], holdout=real["holdout"], target="label", epsilon=1.0, seed=0)
    return _steward_predicate(result, public)


@pytest.fixture(scope="module")
def public_page(public):
    return render_html(public)


@pytest.fixture(scope="module")
def steward_page(steward):
    return render_steward_html(steward)


# --------------------------------------------------------------------------- parsing


class _Outline(HTMLParser):
    """Checks that every element is closed in order; records the outline, the tags and attributes used."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.main_children: list[tuple[str, dict]] = []
        self.body_children: list[tuple[str, dict]] = []
        self.sections: list[str] = []
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.values: list[str] = []
        self.styles: list[str] = []
        self.in_style = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.add(tag)
        self.attributes.update(attributes)
        self.values += [v or "" for v in attributes.values()]
        if self.stack[-2:] == ["body", "main"]:
            self.main_children.append((tag, attributes))
        if self.stack[-1:] == ["body"] and self.stack[-2:-1] == ["html"]:
            self.body_children.append((tag, attributes))
        if tag == "section":
            self.sections.append(attributes.get("id"))
        self.in_style = tag == "style"
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes.update(dict(attrs))

    def handle_endtag(self, tag):
        self.in_style = False
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        if self.in_style:
            self.styles.append(data)


def _outline(page: str) -> _Outline:
    parser = _Outline()
    parser.feed(page)
    parser.close()
    assert parser.errors == [] and parser.stack == [], parser.errors
    return parser


def _section(page: str, name: str) -> str:
    start = page.index(f'<section id="{name}"')
    return page[start: page.index("</section>", start)]


def _inert(page: str) -> _Outline:
    """The page holds only known elements and attributes: no script, no event handler, no URL."""
    outline = _outline(page)
    assert outline.tags <= ELEMENTS, outline.tags - ELEMENTS
    assert outline.attributes <= ATTRIBUTES, outline.attributes - ATTRIBUTES
    for value in outline.values:
        assert "javascript:" not in value.lower() and "url(" not in value.lower(), value
    return outline


# --------------------------------------------------------------------------- both pages


@pytest.mark.parametrize("which", ["public", "steward"])
def test_the_pages_are_well_formed_and_load_nothing(which, public_page, steward_page):
    page = public_page if which == "public" else steward_page
    assert page.startswith("<!DOCTYPE html>")
    outline = _inert(page)
    lowered = page.lower()
    # (Attributes such as src= or href= are refused by _inert; these catch what a parser may not report.)
    for forbidden in ("<script", "<link", "<img", "<iframe", "<object", "<embed", "@import", "url(", "http://",
                      "https://", " style="):
        assert forbidden not in lowered, forbidden
    # The policy forbids fetching anything and allows one stylesheet: the one in the page, by its hash.
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert "default-src 'none'" in policy and "unsafe" not in policy and "script-src" not in policy
    (css,) = outline.styles
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy


def test_the_public_page_puts_the_verdict_first(public_page, public):
    outline = _outline(public_page)
    assert [tag for tag, _ in outline.main_children[:2]] == ["header", "section"]
    assert outline.main_children[1][1]["id"] == "verdict"
    assert outline.sections == PUBLIC_SECTIONS
    box = _section(public_page, "verdict")
    assert 'class="pass"' in box
    spent = public["privacy"]["epsilon_spent"]
    assert f"ε {FILTERS['epsilon'](spent)} of 1" in box and "10<sup>−6</sup>" in box
    assert "one row of the input" in box and "add/remove one row" in box
    assert "No violation detected" in box and "membership attack AUC 0.500" in box
    assert "800 synthetic rows" in box and "801 rows (a DP count)" in box
    assert html_text(public["statement"]) in box


def test_the_steward_page_carries_the_not_for_release_banner_first(steward_page):
    outline = _outline(steward_page)
    tag, attributes = outline.body_children[0]
    assert tag == "div" and attributes["id"] == "not-for-release" and attributes["role"] == "alert"
    first = steward_page.index('id="not-for-release"')
    assert first < steward_page.index("<main>") and NOT_FOR_RELEASE in steward_page[first:first + 300]
    assert outline.sections == STEWARD_SECTIONS
    assert "NOT FOR RELEASE" in steward_page[steward_page.index("<footer>"):]


def test_every_budget_line_is_shown_as_cumulative(public_page, public):
    budget = _section(public_page, "privacy")
    lines = public["privacy"]["budget"]
    assert [line["step"] for line in lines] == ["row count", "marginals", AUDIT_STEP]
    shown = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td><td class=\"num\">([^<]+)</td>", budget)
    assert [row[0] for row in shown] == [line["step"] for line in lines]
    assert [row[1] for row in shown] == [line["mechanism"] for line in lines]
    assert [row[2] for row in shown] == [FILTERS["epsilon"](line["epsilon"]) for line in lines]
    assert "cumulative" in budget and "not to be added up" in budget
    assert "sensitivity is for one unit of privacy: one row of the input" in budget
    assert "2.236" in budget  # the audit counts' L2 sensitivity, √5
    assert "noise_multiplier = " in budget and "pairs = 2 items" in budget
    assert "operating system's cryptographic random number generator" in budget
    assert html_text(public["privacy"]["noise_source"]) in budget
    segments = re.findall(r"<title>([^<]+): cumulative ε ([^<]+)</title></rect>", budget)  # the budget bar
    assert segments == [(html_text(line["step"]), FILTERS["epsilon"](line["epsilon"])) for line in lines]
    assert 'role="alert"' not in public_page


def test_reproducible_noise_is_a_loud_warning():
    predicate = _public_predicate(insecure=True)
    assert predicate["privacy"]["noise_reproducible"] is True
    page = render_html(predicate)
    box, budget = _section(page, "verdict"), _section(page, "privacy")
    assert 'class="flag"' in box
    for part in (box, budget):
        assert '<div class="warning" role="alert"><strong>Reproducible noise: this release is not private' in part
    assert "Do not share this release" in box
    assert "no seed was kept" not in budget


def test_every_public_figure_is_drawn_with_its_noise(public_page, public):
    fidelity = _section(public_page, "fidelity")
    per_column, per_pair = public["audit"]["fidelity"]["per_column"], public["audit"]["fidelity"]["per_pair"]
    for name, value in per_column.items():
        assert f"<title>{html_text(name)}: {value:.3f}</title>" in fidelity, name
    n = len(per_column)
    cells = re.findall(r"<title>[^<]* × [^<]*: ([^<]+)</title>", fidelity)
    assert len(cells) == n * (n - 1) // 2
    assert len([c for c in cells if not c.startswith("not measured")]) == len(per_pair)
    assert f"{len(per_pair)} measured pairs" in fidelity
    figures = public["audit"]["figures"]
    section = _section(public_page, "audit")
    assert section.count("<circle") == 2  # accuracy and AUC, each with its error bar
    assert section.count("A DP release") >= 3 and "differentially private release" in section
    utility, membership = figures["ml_utility"], figures["membership"]
    assert f"{100 * utility['accuracy']:.1f}%" in section and f"noise std {100 * utility['accuracy_noise_std']:.1f}%" in section
    assert f"majority-class baseline = {utility['majority_class_accuracy']:.3f}" in section
    assert f"{membership['auc']:.3f} (noise std {membership['auc_noise_std']:.3f})" in section
    rate_std = figures["noise_std"] / membership["sample"]
    assert f"{100 * membership['tpr']:.2f}% (noise std {100 * rate_std:.2f}%)" in section
    assert f"{100 * membership['fpr']:.2f}% (noise std {100 * rate_std:.2f}%)" in section
    assert "proved by the attack: ε ≥" in section and "most this audit can show" in section
    copies = figures["copies"]
    assert f"{copies['train_rows_with_a_copy']:.1f} (noise std {figures['noise_std']:.1f})" in section
    assert f"{FILTERS['general'](figures['noise_std'])} (in counts)" in section


def test_the_data_model_and_signature_are_shown(public_page, public):
    data = _section(public_page, "data")
    assert "train.csv" in data and "801" in data and "50%" in data
    assert "decided with differential privacy" in data and html_text(QUOTED) in data
    assert data.count("<tr><td>") == len(COLUMNS)  # the columns table
    assert "0123abcd" * 8 in data and "ab" * 16 in data and "HMAC-SHA256" in data
    assert "synthetic.csv" in data
    model = _section(public_page, "model")
    assert "tabular-gan" in model and "epochs" in model and "audit: 0.05" in model
    provenance = _section(public_page, "provenance")
    assert "SHA256:" + "ef" * 32 in provenance and "Ed25519" in provenance
    assert "synthdata verify RELEASE_DIR --public-key KEY.pub.pem" in provenance
    for name, version in public["software"].items():
        assert f"<dt>{html_text(name)}</dt><dd>{html_text(version)}</dd>" in provenance


def test_every_steward_figure_is_drawn(steward_page, steward):
    quality = steward["audit"]["quality"]
    section = _section(steward_page, "quality")
    assert section.count('<figure class="dist">') == len(quality["details"]["distributions"])
    assert f"{100 * quality['sdmetrics_score']:.1f}%" in section and "Detection AUROC" in section
    assert "Total-variation distance between the real and the synthetic joint distribution" in section
    assert "predicting <b>label</b>" in section and "trained on the synthetic data" in section
    leakage = _section(steward_page, "leakage")
    assert leakage.count("<polyline") == 2 and "stroke-dasharray" in leakage  # two ROC curves and the diagonal
    assert "density ratio" in leakage and "TPR at FPR 0.1%" in leakage
    assert "Empirical ε lower bound" in leakage and "most this audit can show" in leakage
    assert "Synthetic records identical to a training record" in leakage and "Rare values" in leakage
    notes = _section(steward_page, "notes")
    assert html_text(steward["audit"]["leakage"]["note"]) in notes
    provenance = _section(steward_page, "provenance")
    assert "9f" * 32 in provenance and "train-release" in provenance


def test_hostile_strings_are_inert(public_page, steward_page):
    hostile = copy.deepcopy(_public_predicate())
    hostile["data"]["input_name"] = SCRIPT + ".csv"
    hostile["privacy"]["budget"][0]["step"] = '"><img src=x onerror=alert(1)>'
    hostile["privacy"]["unit"] = ONLOAD
    hostile["audit"]["verdict"] = "</div></section><iframe>"
    hostile["software"][QUOTED] = SCRIPT
    hostile["signing"]["public_key_fingerprint"] = ONLOAD
    hostile["modality"] = "table"
    for page in (public_page, steward_page, render_html(hostile)):
        _inert(page)
        for raw in ("<script", "<img", "<iframe", "<style>body"):
            assert raw not in page, raw
    page = render_html(hostile)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.csv" in page
    assert "&#34;onload=&#34;alert(1)" in page  # a quote inside text stays text
    # The hostile column's name and its two categories are on the steward's page, escaped, in its plot.
    assert "&lt;img src=x onerror=alert(1)&gt;" in steward_page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;: real" in steward_page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in public_page and "x&#39; onmouseover=&#39;alert(1)" in public_page


def test_no_rare_or_extreme_real_value_reaches_the_steward_page(steward_page):
    for planted in (PLANTED, "987654321", "987,654,321", "9.87654321e", "9.877e+08"):
        assert planted not in steward_page, planted


def test_seeds_are_not_shown(public, steward):
    assert public["model"]["params"].get("seed") is None  # public_report leaves it out
    predicate = copy.deepcopy(public)
    predicate["seed"] = 31337
    predicate["model"]["params"]["seed"] = 31338
    predicate["model"]["params"]["insecure_noise_seed"] = 31339
    page = render_html(predicate)
    for seed in ("31337", "31338", "31339", "424242"):
        assert seed not in page
    audited = copy.deepcopy(steward)
    audited["audit"]["seed"] = 987123  # the audit's own seed (non-private randomness): not for the page either
    assert "987123" not in render_steward_html(audited)


def test_a_violation_and_a_leak_are_flagged_in_red(real, public):
    violation = copy.deepcopy(public)
    violation["audit"]["verdict"] = "VIOLATION: the membership attack proves epsilon >= 3.20, above the claimed 1"
    box = _section(render_html(violation), "verdict")
    assert 'class="flag"' in box and "Violation" in box and "VIOLATION" in box
    copied = audit(real["train"], real["train"], holdout=real["holdout"], epsilon=1.0, seed=0)
    page = render_steward_html(_steward_predicate(copied, public))
    assert 'class="flag"' in _section(page, "verdict") and "Flagged" in page
    assert '<span class="badge flag">' in page


def _older_predicate() -> dict:
    """A synthdata-report/1 predicate (before the public/steward split): other keys, the audit at the top."""
    return {"format": "synthdata-report/1", "modality": "table",
            "privacy": {"epsilon": 1.0, "epsilon_spent": 0.99998, "delta": 2.96e-06, "unit": "one row",
                        "budget": [{"step": "preprocessing", "mechanism": "Gaussian", "epsilon": 0.46,
                                    "delta": 2.96e-06, "parameters": {"sigma": 40.75}}]},
            "quality": {"sdmetrics_score": 0.9}, "leakage": {"leak_detected": False},
            "data": {"input_name": "train.csv", "input_sha256": "0" * 64, "input_rows": 1600}}


def _sparse_variants(full: dict) -> list:
    """The full predicate with each key (two levels deep) missing, None or of the wrong type, and odd wholes."""
    variants: list = [{}, None, [], "text", _older_predicate(), {"modality": "interactions"}, {"modality": 7}]
    for key, value in full.items():
        for broken in (None, "text", [1, 2], {}):
            variants.append({**full, key: broken})
        if isinstance(value, dict):
            for inner in value:
                for broken in (None, "x", {"a": None}, float("nan")):
                    variants.append({**full, key: {**value, inner: broken}})
    return variants


def test_missing_parts_are_tolerated(public, steward):
    for renderer, full, sections in ((render_html, public, PUBLIC_SECTIONS),
                                     (render_steward_html, steward, STEWARD_SECTIONS)):
        variants = _sparse_variants(full)
        for nested in ("audit", "privacy", "data"):  # one more level where the figures are
            for inner, value in (full.get(nested) or {}).items():
                if isinstance(value, dict):
                    for key in value:
                        variants.append({**full, nested: {**full[nested], inner: {**value, key: None}}})
        for variant in variants:
            page = renderer(variant)
            outline = _inert(page)
            assert outline.sections == sections, (variant if not isinstance(variant, dict) else list(variant))
        empty = renderer({})
        assert empty.count("not reported") >= 5
    assert "No fidelity figures for modality interactions" in render_html({"modality": "interactions"})
    older = render_html(_older_predicate())
    assert "0.99998" in _section(older, "verdict") and "preprocessing" in older and "0" * 64 not in older


def test_the_page_depends_only_on_the_predicate_json(public, public_page, steward, steward_page):
    assert render_html(json.loads(json.dumps(public, allow_nan=False))) == public_page
    assert render_steward_html(json.loads(json.dumps(steward, allow_nan=False))) == steward_page


def test_image_pages_follow_the_image_layout(public, steward):
    predicate = copy.deepcopy(public)
    predicate["modality"] = "image"
    predicate["audit"]["fidelity"] = {"class_share_tvd_to_dp_counts": 0.0348,
                                      "note": "synthetic class shares against the model's noisy label counts"}
    predicate["data"] = {"input_name": "digits.npz", "images_train_dp": 1451, "rows_synthetic": 1451,
                         "image_shape": [8, 8, 1], "image_mode": "L", "classes_released": ["0", SCRIPT],
                         "classes": "released by a thresholded DP histogram", "holdout_fraction": 0.2}
    page = render_html(predicate)
    _inert(page)
    assert "0.035" in _section(page, "fidelity") and "8 × 8 pixels, 1 channel" in page
    assert "1,451 synthetic images" in _section(page, "verdict") and "0, &lt;script&gt;" in page
    image_audit = {"format": "synthdata-image-audit/1", "quality": {
        "sdmetrics_score": None, "frechet_distance": 1.511, "frechet_distance_floor": 1.684,
        "frechet_distance_note": "not the Inception-based FID", "ml_utility": {
            "target": "label", "task": "classification", "synthetic": {"accuracy": 0.952},
            "real": {"accuracy": 0.989}, "tested_on": "real holdout images"}},
        "leakage": {**steward["audit"]["leakage"], "rare_values": None, "memorisation": {
            "metric": "root-mean-square pixel difference", "synthetic_to_train": {"q00": 0.0648, "q50": 0.151},
            "holdout_to_train": {"q00": 0.0697, "q50": 0.128}, "share_closer_than_holdout_q01": 0.0034}},
        "notes": [], "subsampled": []}
    page = render_steward_html({**steward, "modality": "image", "audit": image_audit})
    _inert(page)
    assert "FD 1.51" in _section(page, "verdict") and "1.684" in page and "0.952" in page
    assert "Memorisation" in page and "0.065" in page and "0.3% of synthetic images" in page
    assert "Rare values" not in page


def test_formatting_never_overstates_privacy():
    epsilon, small = FILTERS["epsilon"], FILTERS["small"]
    assert epsilon(0.99999999) == "0.999999" and epsilon(1.0) == "1" and epsilon(0.1369914667) == "0.136991"
    assert str(small(1e-6)) == "10<sup>−6</sup>" and str(small(2.96e-06)) == "2.96×10<sup>−6</sup>"
    for name in ("fixed", "percent", "count", "general", "epsilon", "small"):
        assert "not reported" in str(FILTERS[name](None)) and "not reported" in str(FILTERS[name](float("nan")))


def test_the_templates_ship_as_package_data():
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert any(d.startswith("jinja2") for d in pyproject["project"]["dependencies"])
    patterns = pyproject["tool"]["setuptools"]["package-data"]["synthdata.report"]
    package = resources.files("synthdata.report")
    shipped = {f"templates/{p.name}" for p in package.joinpath("templates").iterdir()} | {"style.css"}
    assert all(any(Path(f).match(p) for p in patterns) for f in shipped), (shipped, patterns)


def html_text(text: str) -> str:
    """``text`` as autoescaping writes it."""
    from markupsafe import escape

    return str(escape(text))


# --------------------------------------------------------------------------- in a browser


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it in CI)")
    return path


def _screenshot(page: str, tmp_path: Path, name: str) -> np.ndarray:
    from PIL import Image

    html_path, png = tmp_path / f"{name}.html", tmp_path / f"{name}.png"
    html_path.write_text(page, encoding="utf-8")
    subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1280,900",
         html_path.as_uri()],
        check=True, capture_output=True, timeout=180,
    )
    assert png.exists() and png.stat().st_size > 10_000
    with Image.open(png) as image:
        rgb = np.asarray(image.convert("RGB"))
    assert rgb.shape[:2] == (900, 1280)
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50  # not a blank page
    return rgb


def test_the_pages_render_in_headless_chromium(public_page, steward_page, tmp_path):
    rgb = _screenshot(public_page, tmp_path, "report")
    # The verdict box's green frame (a pass) is on the first screen: the stylesheet was allowed and applied.
    green = np.all(rgb == (0x1A, 0x7F, 0x37), axis=-1)
    assert green.sum() > 1000
    rows = np.nonzero(green.any(axis=1))[0]
    assert rows.min() < 200 and rows.max() < 900
    rgb = _screenshot(steward_page, tmp_path, "audit")
    # The red NOT FOR RELEASE banner spans the top of the steward's page.
    red = np.all(rgb == (0xB4, 0x23, 0x18), axis=-1)
    assert red[:40].mean() > 0.5 and red[:40].any(axis=0).mean() > 0.9
