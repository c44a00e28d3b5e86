"""A repeating record number not named like one (``respondent``: 6-digit ids on 1-6 rows
each) is an identifier, never a numerical column; amounts and weights of many digits are
not (issue 11, tables nobody tuned on: anes96's ``respondent`` was modelled as a number).

The rule reads the schema release's shape classes: whole numbers of 5+ digits that are not
multiples of 10, by width. Noisy decisions are tested with fresh CSPRNG noise, each test
first asserting that its data sits many noise standard deviations from the thresholds.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from synthdata.privacy import GaussianRequest, PrivacyLedger
from synthdata.schema import Excluded
from synthdata.tabular.inference import _MINORITY_MARGIN, _REPEAT_SHARE, _WIDE_SHARE, SHAPES, WIDE6, _decide, \
    infer_schema_private, shape_codes

MARGIN = 10.0


def test_wide_whole_numbers_are_counted_by_width_as_numbers_and_as_text():
    numbers = pd.Series([125024, 125020, 12346, 1234, -123457, 1234567891, 0, 12345, 75, 3000, 150])
    text = numbers.astype(str)
    expected = ["wide6", "x10", "wide5", "integer", "wide6", "wide9+", "zero", "x5", "x25", "x1000", "x50"]
    assert [SHAPES[c] for c in shape_codes(numbers)] == expected
    assert [SHAPES[c] for c in shape_codes(text)] == expected
    assert [SHAPES[c] for c in shape_codes(numbers.astype(float))] == expected


def _shape(**cells) -> np.ndarray:
    shape = np.zeros(len(SHAPES))
    for name, value in cells.items():
        shape[SHAPES.index(name.replace("wide9", "wide9+"))] = value
    return shape


def test_record_numbers_and_quantities_from_noisy_counts():
    sigma, present = 20.0, 10_000.0
    # 6-digit ids, 80% off the multiples of 5, about 3 rows each: an identifier.
    ids = _decide("respondent", _shape(wide6=0.8 * present, integer=0.2 * present), 0.3 * present, sigma)
    assert isinstance(ids, Excluded) and ids.reason.startswith("identifier") and "6 digits" in ids.reason
    # A survey weight (adult's fnlwgt): two widths, and two thirds of its values distinct.
    weight = _decide("fnlwgt", _shape(wide6=0.66 * present, wide5=0.14 * present, integer=0.2 * present),
                     0.66 * present, sigma)
    assert weight.type == "numerical" and weight.integer
    # One width but nearly every value distinct (a money amount to the unit): a number.
    amount = _decide("amount", _shape(wide6=0.9 * present, integer=0.1 * present), 0.9 * present, sigma)
    assert amount.type == "numerical"
    # Round prices of one width: the multiples of 10 are plain integers.
    price = _decide("price", _shape(wide6=0.05 * present, x10=0.6 * present, x100=0.35 * present), 0.2 * present,
                    sigma)
    assert price.type == "numerical" and price.step is None
    # Few distinct values (a code of one width, repeated): not an identifier either.
    code = _decide("site", _shape(wide5=present), 15.0, sigma)
    assert code.type == "numerical"


def test_an_unnamed_repeating_person_number_is_left_out_and_a_weight_is_kept():
    """End to end on fresh noise: ``respondent`` (6-digit ids on 1-6 rows each) is left out
    as an identifier; a weight like adult's ``fnlwgt`` (5-7 digits, 2/3 distinct), a price
    (3-5 digits) and an age are numbers."""
    rng = np.random.default_rng(4)
    people = rng.integers(100_000, 1_000_000, 2_000)
    rows = np.repeat(people, rng.integers(1, 7, len(people)))
    n = len(rows)
    frame = pd.DataFrame({
        "respondent": rng.permutation(rows),
        "weight": np.round(np.exp(rng.normal(12.0, 0.5, n))).astype(np.int64),
        "price": np.round(np.exp(rng.normal(7.5, 1.0, n))).astype(np.int64) + 300,
        "age": rng.integers(18, 90, n),
    })
    ledger = PrivacyLedger(epsilon=1.0, delta=1e-6)  # fresh CSPRNG noise
    ledger.plan(gaussians={"schema": GaussianRequest(sensitivity=1.0, share=1.0)})
    sigma = ledger.planned_multiplier("schema") * math.sqrt(2 * frame.shape[1])
    codes = shape_codes(frame["respondent"])
    wide = int((codes == WIDE6).sum())
    distinct = frame["respondent"].nunique()
    assert wide - MARGIN * sigma > _WIDE_SHARE * n and distinct + MARGIN * sigma < _REPEAT_SHARE * n
    assert distinct - MARGIN * sigma > 0.05 * n
    weight_distinct = frame["weight"].nunique()
    assert weight_distinct - MARGIN * sigma > _REPEAT_SHARE * n  # the weight's values are mostly distinct
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        schema = infer_schema_private(frame, ledger=ledger)
    assert [e.name for e in schema.excluded] == ["respondent"]
    assert any("respondent" in str(w.message) and "--privacy-unit" in str(w.message) for w in caught)
    assert all(schema[name].type == "numerical" and schema[name].integer for name in ("weight", "price", "age"))


def test_whole_numbers_on_a_step_from_noisy_counts():
    """Loan amounts (multiples of 25, most of 1000) get the lattice of 25 when every
    multiple's cell clears the noise, and of 100 when the few odd multiples of 25 hide in
    it (read as stray, as stray decimals are); numbers with plain whole values beside
    their round ones, a 1-7 scale and a column of zeros with a few round values off the
    step get none."""
    present = 10_000.0
    loans = _shape(x1000=0.78 * present, x100=0.18 * present, x50=0.02 * present, x25=0.02 * present)
    assert _decide("loan_amount", loans, 600.0, 20.0).step == 25.0
    assert _decide("loan_amount", loans, 600.0, 100.0).step == 100.0
    grams = _shape(x100=0.48 * present, x50=0.38 * present, x25=0.14 * present)
    column = _decide("body_mass_g", grams, 90.0, 20.0)
    assert (column.type, column.integer, column.step, column.halves_undecided) == ("numerical", True, 25.0, False)
    small = _shape(x100=0.48 * 342, x50=0.38 * 342, x25=0.14 * 342)  # penguins: 342 rows, sigma 35
    assert _decide("body_mass_g", small, 90.0, 35.0).step is None
    pressure = _shape(integer=0.46 * present, x10=0.4 * present, x50=0.1 * present, x100=0.04 * present)
    assert _decide("trestbps", pressure, 50.0, 20.0).step is None
    scale = _shape(integer=0.86 * present, x5=0.14 * present)
    assert _decide("selfLR", scale, 7.0, 20.0).step is None
    hours = _shape(integer=0.15 * present, x5=0.15 * present, x10=0.6 * present, x50=0.1 * present)
    assert _decide("hours_per_week", hours, 90.0, 20.0).step is None
    gains = _shape(zero=0.9 * present, x1000=0.09 * present, integer=0.01 * present)
    assert _decide("capital_gain", gains, 90.0, 20.0).step is None  # 1% off the thousands clears the noise


def test_a_column_of_multiples_of_25_is_inferred_on_that_step_end_to_end():
    """Fresh noise: amounts on multiples of 25 (20% not of 100) get step 25; hours, 85%
    multiples of 5, get none."""
    rng = np.random.default_rng(6)
    n = 8_000
    amount = np.where(rng.random(n) < 0.8, rng.integers(10, 400, n) * 100, rng.integers(40, 1600, n) * 25)
    hours = np.where(rng.random(n) < 0.85, rng.integers(2, 16, n) * 5, rng.integers(1, 80, n))
    frame = pd.DataFrame({"amount": amount, "hours": hours, "age": rng.integers(18, 90, n)})
    ledger = PrivacyLedger(epsilon=1.0, delta=1e-6)  # fresh CSPRNG noise
    ledger.plan(gaussians={"schema": GaussianRequest(sensitivity=1.0, share=1.0)})
    sigma = ledger.planned_multiplier("schema") * math.sqrt(2 * frame.shape[1])
    odd25 = int((shape_codes(frame["amount"]) == SHAPES.index("x25")).sum())
    plain = int((shape_codes(frame["hours"]) == SHAPES.index("integer")).sum())
    assert min(odd25, plain) - MARGIN * sigma > _MINORITY_MARGIN * sigma
    schema = infer_schema_private(frame, ledger=ledger)
    assert (schema["amount"].integer, schema["amount"].step) == (True, 25.0)
    assert schema["hours"].step is None and schema["age"].step is None
