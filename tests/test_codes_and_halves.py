"""Private inference of code columns (issue 11).

Every noisy decision here is tested with fresh CSPRNG noise, never a seed: each test
first asserts that its data sits many noise standard deviations (the estimator's own σ
and thresholds) away from the rule's threshold, so the decision cannot hinge on a draw.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from synthdata.privacy import GaussianRequest, PrivacyLedger
from synthdata.tabular.inference import _CODE_SHARE, _MINORITY_MARGIN, infer_schema_private

#: Standard deviations between the data and a rule's threshold: a wrong side by noise has
#: probability below 1e-20.
MARGIN = 10.0


def _schema_ledger(epsilon: float) -> PrivacyLedger:
    ledger = PrivacyLedger(epsilon=epsilon, delta=1e-6)  # fresh CSPRNG noise
    ledger.plan(gaussians={"schema": GaussianRequest(sensitivity=1.0, share=1.0)})
    return ledger


def test_numbers_beside_many_codes_are_a_code_column_and_a_few_typos_are_not():
    """``85123`` beside ``85123A`` (product codes, 10% with a letter) is categorical; numbers
    with 0.3% typos (``12a``) and missing markers (``?``, ``NA``, ``-``) stay numbers, and
    the typos and markers are read as missing, as before."""
    rng = np.random.default_rng(5)
    n = 10_000
    digits = rng.integers(20_000, 23_000, n).astype(str)
    lettered = np.char.add(rng.integers(20_000, 23_000, n).astype(str), rng.choice(list("ABCDE"), n))
    coded = rng.random(n) < 0.10
    amount = rng.integers(1, 500, n).astype(str).astype(object)
    marker = rng.random(n) < 0.03
    amount[marker] = rng.choice(["?", "NA", "-"], int(marker.sum()))
    typos = 30
    amount[rng.choice(np.flatnonzero(~marker), typos, replace=False)] = "12a"
    frame = pd.DataFrame({"stock": np.where(coded, lettered, digits), "amount": amount,
                          "qty": rng.integers(1, 20, n)})
    ledger = _schema_ledger(1.0)
    sigma = ledger.planned_multiplier("schema") * math.sqrt(2 * frame.shape[1])
    # The rule (noisy codes above both MINORITY_MARGIN sigma and CODE_SHARE of the values)
    # is far from both columns: 1,000 codes on one side, 30 typos on the other.
    threshold = max(_MINORITY_MARGIN * sigma, _CODE_SHARE * n)
    assert coded.sum() - MARGIN * sigma > threshold > typos + MARGIN * sigma
    schema = infer_schema_private(frame, ledger=ledger)
    assert schema["stock"].type == "categorical"
    assert schema["amount"].type == "numerical" and schema["amount"].integer
    assert schema["qty"].type == "numerical" and schema["qty"].integer
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        conformed = schema.conform(frame)
    assert any("amount" in str(w.message) for w in caught)
    assert conformed["amount"].isna().sum() == marker.sum() + typos
