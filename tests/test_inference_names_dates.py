"""Private type inference on tables nobody tuned it on: id-like names and ISO date-times
with a UTC marker (issue 11's unseen-table check: anes96, wine, mplsstops)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthdata.privacy import GaussianRequest, PrivacyLedger
from synthdata.schema import ID_NAME, Excluded, parse_datetimes
from synthdata.tabular.inference import INTEGER, SHAPES, _decide, infer_schema_private, shape_codes


@pytest.mark.parametrize("name", ["patient_id", "id", "ID", "case_no", "CustomerID", "orderId", "visit_num",
                                  "user ids", "zip_code", "id_person", "userID"])
def test_names_that_say_identifier(name):
    assert ID_NAME.search(name)


@pytest.mark.parametrize("name", ["malic_acid", "fluid", "paid", "valid", "num", "number", "no", "PID", "acid"])
def test_names_that_only_end_in_the_letters_of_one_are_not_identifiers(name):
    """A case-blind "id" ending took wine's ``malic_acid`` for an identifier; ``num``
    alone (heart disease's diagnosis, a family size) is a count or a code, not an id."""
    assert not ID_NAME.search(name)


def _shape(present: float) -> np.ndarray:
    shape = np.zeros(len(SHAPES))
    shape[INTEGER] = present
    return shape


def test_a_small_scale_named_like_an_id_is_kept_when_only_noise_lifts_its_distinct_count():
    """A 0-6 party scale named ``party_id`` on 944 rows: its 7 distinct values read 7 +
    2.5 sigma (sigma 60, a small table at epsilon 1) are above 5% of the rows, but not
    clearly: the column is a number, not an identifier."""
    sigma, present = 60.0, 944.0
    noisy_distinct = 7 + 2.5 * sigma
    assert noisy_distinct >= 0.05 * present  # the old rule's bar: it dropped the column
    column = _decide("party_id", _shape(present), noisy_distinct, sigma)
    assert not isinstance(column, Excluded)
    assert column.type == "numerical" and column.integer


def test_a_repeating_id_with_many_values_is_still_an_identifier():
    sigma, present = 60.0, 10_000.0
    column = _decide("patient_id", _shape(present), 3_000 - 2 * sigma, sigma)
    assert isinstance(column, Excluded) and "identifier" in column.reason


def test_iso_date_times_with_a_utc_marker_or_an_offset_are_dates():
    """``2013-01-01T10:00:00Z`` (mplsstops, flights) was text: left out, or taken for an
    identifier (a distinct value per row). It is a date-time, read as UTC."""
    rng = np.random.default_rng(3)
    n = 3_000
    start = pd.Timestamp("2017-01-01")
    stamps = start + pd.to_timedelta(rng.integers(0, 365 * 24 * 3600, n), unit="s")
    text = stamps.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy().astype(object)
    text[:5] = ["2017-03-01T10:00:00+01:00", "2017-03-01 10:00:00 UTC", "2017-03-01T10:00Z", None, "2017-03-01"]
    frame = pd.DataFrame({"when": text, "amount": rng.integers(1, 50, n)})
    ledger = PrivacyLedger(epsilon=1.0, delta=1e-6)  # fresh CSPRNG noise; 3,000 rows clear it by far
    ledger.plan(gaussians={"schema": GaussianRequest(sensitivity=1.0, share=1.0)})
    schema = infer_schema_private(frame, ledger=ledger)
    assert schema["when"].type == "datetime"
    assert "%H:%M" in schema["when"].datetime_format
    parsed = parse_datetimes(frame["when"], schema["when"].datetime_format)
    assert parsed.isna().sum() == 1  # only the missing cell
    assert list(parsed[:3]) == [pd.Timestamp("2017-03-01 09:00"), pd.Timestamp("2017-03-01 10:00"),
                                pd.Timestamp("2017-03-01 10:00")]
    assert parsed[4] == pd.Timestamp("2017-03-01")
    assert (parsed[5:] == pd.Series(stamps[5:], index=parsed.index[5:])).all()


def test_hourly_stamps_are_read_on_the_hour_and_released_on_it():
    """flights' ``time_hour`` (``2013-01-01T10:00:00Z``, every stamp on the hour) was read to the
    minute, and 98% of its synthetic stamps fell between hours. A time on the hour is a shape of
    its own; a column of them gets the format ``%H:00`` and the hour's lattice. Stamps spread over
    the minutes keep ``%H:%M``."""
    from synthdata.tabular.encoding import TabularEncoder

    rng = np.random.default_rng(4)
    n = 6_000
    hours = pd.Timestamp("2013-01-01") + pd.to_timedelta(rng.integers(0, 365 * 24, n), unit="h")
    minutes = pd.Timestamp("2013-01-01") + pd.to_timedelta(rng.integers(0, 365 * 24 * 60, n), unit="min")
    frame = pd.DataFrame({"time_hour": hours.strftime("%Y-%m-%dT%H:%M:%SZ"),
                          "departed": minutes.strftime("%Y-%m-%d %H:%M"),
                          "stamp": pd.Series(hours)})  # held as date-times, not text
    assert [SHAPES[c] for c in shape_codes(pd.Series(["2013-01-01T10:00:00Z", "2013-01-01 10:30",
                                                      "01/02/2013 11:00", "2013-01-01"]))] == [
        "date:iso:hour:either", "date:iso:minute:either", "date:slash:hour:either", "date:iso:date:either"]
    ledger = PrivacyLedger(epsilon=1.0, delta=1e-6, threshold_delta=1e-7)  # fresh CSPRNG noise
    ledger.plan(gaussians={"schema": GaussianRequest(sensitivity=1.0, share=0.3),
                           "preprocessing": GaussianRequest(sensitivity=1.0, share=0.7)})
    schema = infer_schema_private(frame, ledger=ledger)
    assert schema["time_hour"].datetime_format == "%Y-%m-%d %H:00"
    assert schema["stamp"].datetime_format == "%Y-%m-%d %H:00"
    assert schema["departed"].datetime_format == "%Y-%m-%d %H:%M"
    parsed = parse_datetimes(frame["time_hour"], schema["time_hour"].datetime_format)
    assert (parsed == pd.Series(hours)).all()
    encoder = TabularEncoder().fit(schema.conform(frame[schema.names]), schema, ledger=ledger,
                                   threshold_delta=1e-7, rows=float(n))
    draw = np.random.default_rng()
    levels = np.stack([draw.choice(c.size, size=5_000, p=np.maximum(c.counts, 0) / np.maximum(c.counts, 0).sum())
                       for c in encoder.codes_], axis=1)
    synthetic = encoder.decode(levels, rng=draw)
    stamps = pd.to_datetime(synthetic["time_hour"].dropna(), format="%Y-%m-%d %H:00")
    assert len(stamps) > 4_000 and (stamps == stamps.dt.floor("h")).all() and stamps.dt.hour.nunique() > 12
    departed = pd.to_datetime(synthetic["departed"].dropna(), format="%Y-%m-%d %H:%M")
    assert (departed != departed.dt.floor("h")).mean() > 0.5


def test_one_noisy_date_cell_does_not_make_a_small_tables_numbers_dates():
    """Heart disease's ``age`` (303 rows) read as a date in one fit of two: of the 54 date
    cells one clears 3 sigma by chance in 7% of columns, and on a small table its noise
    (here 4 sigma) outweighed the column's numbers. A date cell now needs 4.5 sigma."""
    from synthdata.errors import SynthdataWarning
    from synthdata.tabular.inference import _DATE_MARGIN, _FIRST_DATE

    sigma = 100.0
    shape = _shape(303.0)
    shape[_FIRST_DATE + 5] = 4.0 * sigma
    assert 4.0 < _DATE_MARGIN and shape[_FIRST_DATE + 5] > shape[INTEGER]
    with pytest.warns(SynthdataWarning, match="cannot tell whole numbers from decimals"):  # a small table
        column = _decide("age", shape, 41.0, sigma)
    assert column.type == "numerical"
    shape[_FIRST_DATE + 5] = 3_000.0  # a real date column is still one
    assert _decide("admitted", shape, 300.0, sigma).type == "datetime"
