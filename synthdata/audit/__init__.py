"""Audits of a synthetic table against the real one it stands in for.

:mod:`~synthdata.audit.quality` measures fidelity and usefulness (marginal distances,
train-on-synthetic/test-on-real, the SDMetrics quality report). The functions return
plain dictionaries so the report stage can embed them in a release as they are.
"""

from .quality import marginal_tvd, ml_utility, sdmetrics_quality

__all__ = ["marginal_tvd", "ml_utility", "sdmetrics_quality"]
