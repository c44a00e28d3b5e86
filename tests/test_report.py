"""The HTML report: drawn from the predicate alone, self-contained, escaped, free of real values."""

from __future__ import annotations

import copy
import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

from synthdata.audit import audit
from synthdata.report.html import render_html  # the audit page renderer (the steward's audit)

from .audit.conftest import PLANTED, population

#: A column name that is also markup: it must reach the page as text.
MARKUP_COLUMN = "<b>x</b>"
#: One person's extreme income: it must never reach the page.
EXTREME = 987654321.0
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


def _table(n: int, seed: int):
    frame = population(n, seed)
    frame[MARKUP_COLUMN] = np.where(frame["smoker"], "yes", "no")
    return frame


def _privacy() -> dict:
    """A privacy section shaped like TabularGAN.ledger_.to_dict(): cumulative ε per line."""
    delta = 2.96e-06
    return {
        "epsilon": 1.0,
        "epsilon_spent": 0.99998,
        "delta": delta,
        "accountant": "rdp",
        "accountant_detail": "Opacus RDPAccountant, orders 1.1-1024",
        "unit": "one row of the input table",
        "budget": [
            {"step": "preprocessing", "mechanism": "Gaussian sparse histograms per column", "epsilon": 0.4621,
             "delta": delta, "parameters": {"sigma": 40.75, "noise_multiplier": 8.89, "columns": 7}},
            {"step": "marginals", "mechanism": "Gaussian mechanism on 2-way marginals", "epsilon": 0.9779,
             "delta": delta, "parameters": {"sigma": 40.46, "pairs": [["age", "income"], ["city", "label"]]}},
            {"step": "discriminator", "mechanism": "DP-SGD (Poisson-subsampled Gaussian)", "epsilon": 0.99998,
             "delta": delta, "parameters": {"noise_multiplier": 7.68, "sample_rate": 0.0314, "max_grad_norm": 1.0,
                                            "steps": 128}},
        ],
    }


def _predicate(result: dict, *, holdout: int) -> dict:
    return {
        "format": "synthdata-report/1",
        "created": "2026-11-22T05:00:00Z",
        "modality": "table",
        "privacy": _privacy(),
        "quality": result["quality"],
        "leakage": result["leakage"],
        "audit": {"notes": result["notes"], "subsampled": result["subsampled"]},
        "data": {"input_name": "train.csv", "input_sha256": "0123abcd" * 8, "input_rows": 800 + holdout,
                 "rows_train": 800, "rows_holdout": holdout, "holdout_fraction": holdout / (800 + holdout),
                 "columns": [{"name": c, "type": "categorical"} for c in result["columns"]], "rows_synthetic": 800},
        "model": {"name": "TabularGAN", "params": {"epsilon": 1.0, "delta": None, "epochs": 4.0}},
        "software": {"synthdata_version": "0.1.0", "python": "3.11.7", "torch": "2.13.0"},
        "signing": {"algorithm": "Ed25519", "public_key_fingerprint": "SHA256:" + "ef" * 32},
        "files": ["synthetic.csv", "report.html"],
    }


@pytest.fixture(scope="module")
def real():
    train = _table(800, 1)
    train.loc[5, "city"] = PLANTED  # one person's category value
    train.loc[7, "income"] = EXTREME  # one person's extreme number
    return {"train": train, "holdout": _table(800, 2), "other": _table(800, 3)}


@pytest.fixture(scope="module")
def predicate(real):
    result = audit(real["train"], real["other"], holdout=real["holdout"], target="label", epsilon=1.0, seed=0)
    return _predicate(result, holdout=800)


@pytest.fixture(scope="module")
def page(predicate):
    return render_html(predicate)


class _Outline(HTMLParser):
    """Checks that every element is closed in order, and records the body's outline."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.body_children: list[tuple[str, dict]] = []  # elements directly inside <main>
        self.sections: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if self.stack[-2:] == ["body", "main"]:
            self.body_children.append((tag, attributes))
        if tag == "section":
            self.sections.append(attributes.get("id"))
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        if self.stack[-2:] == ["body", "main"]:
            self.body_children.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _outline(page: str) -> _Outline:
    parser = _Outline()
    parser.feed(page)
    parser.close()
    return parser


def _verdict_box(page: str) -> str:
    start = page.index('<section id="verdict"')
    return page[start: page.index("</section>", start)]


def test_the_page_is_well_formed_and_the_verdict_comes_first(page):
    outline = _outline(page)
    assert outline.errors == [] and outline.stack == []
    assert page.startswith("<!DOCTYPE html>")
    # Only the title line comes before the verdict box; the sections follow in order.
    assert [tag for tag, _ in outline.body_children[:2]] == ["header", "section"]
    assert outline.body_children[1][1]["id"] == "verdict"
    assert outline.sections == ["verdict", "privacy", "quality", "leakage", "provenance"]


def test_the_page_loads_nothing(page):
    assert "http://" not in page and "https://" not in page
    lowered = page.lower()
    for forbidden in ("<script", "<link", "<img", "<iframe", "<object", "<embed", "@import", "url(", "src=", "href="):
        assert forbidden not in lowered, forbidden
    assert "default-src 'none'" in page  # the policy forbids fetching anything


def test_the_verdict_box_states_what_was_spent_and_found(page, predicate):
    box = _verdict_box(page)
    assert "ε 0.99998 of 1" in box and "2.96×10<sup>−6</sup>" in box
    assert 'class="pass"' in box and "No leak detected" in box
    assert predicate["leakage"]["verdict"].split(":")[0] in box
    assert f"{100 * predicate['quality']['sdmetrics_score']:.1f}%" in box
    assert "ML utility for label" in box and "800 synthetic" in box


def test_the_budget_is_shown_line_by_line_as_cumulative(page):
    budget = page[page.index('<section id="privacy"'): page.index('<section id="quality"')]
    assert "Cumulative ε after the step" in budget and "not to be added up" in budget
    assert [m for m in re.findall(r"<tr><td>([a-z]+)</td>", budget)] == ["preprocessing", "marginals", "discriminator"]
    for shown in ("0.4621", "0.9779", "0.99998", "noise_multiplier = 7.68", "pairs = 2 items", "Opacus RDPAccountant"):
        assert shown in budget, shown


def test_every_figure_is_drawn(page, predicate):
    columns = predicate["quality"]["details"]["distributions"]
    assert page.count('<figure class="dist">') == len(columns)
    leakage = page[page.index('<section id="leakage"'):]
    assert leakage.count("<polyline") == 2 and "stroke-dasharray" in leakage  # two ROC curves and the diagonal
    assert "Empirical ε lower bound" in leakage and "most this audit can show" in leakage
    assert "Total-variation distance between the real and the synthetic joint distribution" in page
    assert "synthdata verify RELEASE_DIR --public-key KEY.pub.pem" in page
    assert "SHA256:" + "ef" * 32 in page and "0123abcd" * 8 in page
    assert html.escape(predicate["leakage"]["note"]) in page  # the audit is not DP, and says so


def test_text_from_the_predicate_is_escaped(page, predicate):
    assert MARKUP_COLUMN not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    hostile = copy.deepcopy(predicate)
    hostile["data"]["input_name"] = "<script>alert(1)</script>.csv"
    hostile["privacy"]["budget"][0]["step"] = '"><img src=x onerror=alert(1)>'
    hostile["audit"]["notes"].append("</li></ul><iframe>")
    hostile["model"]["params"]["note"] = "<style>body{display:none}</style>"
    text = render_html(hostile)
    assert _outline(text).errors == []
    for raw in ("<script", "<img", "<iframe", "<style>body"):
        assert raw not in text, raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.csv" in text


def test_no_rare_or_extreme_real_value_reaches_the_page(page):
    for planted in (PLANTED, "987654321", "987,654,321", "9.87654321e", "9.877e+08"):
        assert planted not in page, planted


def test_the_seed_is_not_shown(predicate):
    text = render_html({**predicate, "seed": 424242})
    assert "424242" not in text


def test_a_leak_is_flagged_in_red(real):
    copied = audit(real["train"], real["train"], holdout=real["holdout"], epsilon=1.0, seed=0)
    page = render_html(_predicate(copied, holdout=800))
    box = _verdict_box(page)
    assert 'class="flag"' in box and "Flagged" in box and "VIOLATION" in box
    assert '<span class="badge flag">' in page


def test_missing_parts_are_tolerated(real):
    # No holdout: the audit skips membership inference and the page says so.
    result = audit(real["train"], real["other"], seed=0)
    predicate = _predicate(result, holdout=0)
    page = render_html(predicate)
    assert _outline(page).errors == []
    assert "Not tested" in _verdict_box(page) and "Membership inference was not run" in page
    assert "no holdout" in _verdict_box(page) and "ML utility: not measured" in page
    # Whole sections missing or None, figures None, odd types: still a page.
    sparse = {"privacy": {"epsilon": 1.0, "epsilon_spent": None, "budget": None}, "quality": None,
              "leakage": {"leak_detected": None, "attacks": {"x": {"auroc": None, "roc": {"fpr": [0, 1]}}}},
              "data": {"columns": "not a list"}, "signing": None}
    for partial in ({}, sparse, {"quality": {"details": {"distributions": {"c": None}}}}, {"privacy": _privacy()}):
        text = render_html(partial)
        outline = _outline(text)
        assert outline.errors == [] and outline.sections[0] == "verdict"
        assert "not available" in text or "n/a" in text


def test_the_page_depends_only_on_the_predicate_json(predicate, page):
    assert render_html(json.loads(json.dumps(predicate, allow_nan=False))) == page


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("chromium is not installed: apt-get install chromium")
    return path


def test_the_page_renders_in_headless_chromium(page, tmp_path):
    from PIL import Image

    chromium = _chromium()
    html_path, png = tmp_path / "report.html", tmp_path / "screen.png"
    html_path.write_text(page, encoding="utf-8")
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1280,900",
         html_path.as_uri()],
        check=True, capture_output=True, timeout=180,
    )
    assert png.exists() and png.stat().st_size > 10_000
    with Image.open(png) as image:
        rgb = np.asarray(image.convert("RGB"))
    assert rgb.shape[:2] == (900, 1280)
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50  # not a blank page
    # The verdict box's green frame (a pass) is on the first screen, without scrolling.
    green = np.all(rgb == (0x1A, 0x7F, 0x37), axis=-1)
    assert green.sum() > 1000
    rows = np.nonzero(green.any(axis=1))[0]
    assert rows.min() < 200 and rows.max() < 900
