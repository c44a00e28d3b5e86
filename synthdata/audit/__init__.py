"""Audits of a synthetic table against the real one it stands in for.

:func:`audit` runs everything and returns one JSON-ready dict; the ``synthdata audit``
command and the release report use it as it is. It works on a synthetic table made by
any tool: columns may come in another order, integers as floats (``39.0`` equals
``39``); a missing column is refused in one line; extra columns are ignored with a note.

The pieces, usable on their own: :mod:`~synthdata.audit.quality` (marginal distances,
train-on-synthetic/test-on-real, the SDMetrics quality report, real-vs-synthetic
detection), :mod:`~synthdata.audit.leakage` (membership inference, the empirical ε
lower bound, exact copies, rare values) and :mod:`~synthdata.audit.stats` (the
confidence intervals and the ε bound).

The audit reads the real data freely and is **not** differentially private: its output
is for the data steward and the compliance reviewer. It holds aggregates only — rates,
counts, scores, column names — never a real row. The plot data names a category value
only when at least ``rare_k`` (5) training rows hold it, and cuts numbers at points of a
round grid inside the real range, so no rare value and no extreme of a column appears.

Result schema (``format`` ``"synthdata-audit/1"``); ``None`` where a figure could not be
computed, with a note saying why::

    format          "synthdata-audit/1"
    rows            {real_train, synthetic, holdout}: rows in each table (holdout: null if none)
    columns         the audited columns; target, seed: as given
    quality
      sdmetrics_score      SDMetrics quality score, mean of the next two; 1 is best
      column_shapes        SDMetrics Column Shapes (KS / TV complement per column)
      column_pair_trends   SDMetrics Column Pair Trends (correlation / contingency per pair)
      tvd_1way, tvd_2way   mean total-variation distance of every column's and pair's
                           distribution, numbers in 20 quantile bins of the real data; 0 is best
      ml_utility           with a target: {task, target, synthetic: {auroc, accuracy} or {r2},
                           real: {...}, rows, n_classes, positive_class}: one model trained on
                           the synthetic rows, one on the real training rows, both tested on
                           the holdout; null without a target or a holdout
      detection_auc        cross-validated AUROC of a classifier telling real training rows
                           from synthetic ones; 0.5 = indistinguishable
      detection            {folds, rows: {real, synthetic}, model}
      details              {column_shapes: [...], column_pair_trends: [...]} (SDMetrics rows:
                           column(s), metric, score), tvd_per_column {col: tvd},
                           tvd_per_pair {"a | b": tvd}, distributions {col: ...} (below)
      details.distributions[col]
                           real and synthetic shares for a per-column plot: {kind,
                           binning, labels, real, synthetic, edges, other, missing, rows}.
                           binning "values" (categories, booleans, numbers with at most 20
                           distinct values): one bar per value held by >= rare_k training
                           rows, the 20 most frequent; every other value — rare, beyond
                           the 20, or only synthetic — is summed in other {real,
                           synthetic}, never named. binning "intervals" (other numbers,
                           dates): bins of one round width between clip points that leave
                           >= max(rare_k, 1%) real rows beyond them, rounded outwards,
                           plus open bins "< a" and ">= b" (labels say so; left out when
                           empty); edges run from a to b (ISO text for dates); other is
                           null. missing {real, synthetic}: share of missing values.
                           Shares are of all rows: a table's bars + other + missing sum
                           to 1; rows {real, synthetic} are the row counts
    leakage
      mia_auc              AUROC of the best membership-inference attack (members: training
                           rows, non-members: holdout rows); 0.5 = chance
      mia_auc_ci           its 95% DeLong interval; best_attack: its name
      attacks              {distance_to_closest_record, density_ratio}: {auroc, auroc_ci,
                           tpr_at_fpr: [{target_fpr, tpr, fpr, tpr_ci}] at FPR 1% and 0.1%,
                           roc: {fpr: [...], tpr: [...]}, description}; roc is the ROC
                           curve from (0, 0) to (1, 1), at most 200 points evenly spaced
                           along it, rates rounded to 4 decimals
      rows                 {members, non_members, reference}: rows each attack scored, and
                           the real reference sample of the density attack
      empirical_epsilon_lower_bound
                           ε that the best attack proves at 95% confidence (attack and
                           threshold chosen on one half of the rows, measured on the other)
      epsilon_bound        {value, attack, tpr, fpr, tpr_low, fpr_high, confidence, delta,
                           rows: {selection, evaluation}, max_certifiable, method}
      max_certifiable_epsilon
                           the bound a perfect attack would reach at these sample sizes: the
                           audit cannot show more, so a low bound is no proof of privacy
      claimed_epsilon, delta   the claim under test (epsilon null if none)
      leak_detected        with a claimed ε: the lower bound exceeds it; without: an attack's
                           AUROC lower bound is above 0.5 + 0.02, or synthetic rows copy
                           training rows significantly more often than holdout rows;
                           null without a holdout
      tests                {attacks_above_chance: [names], auroc_margin, copies_excess,
                           copy_alpha, epsilon_violation}
      verdict              one sentence: "VIOLATION: ..." / "no violation detected: ..." with a
                           claim, "leak detected: ..." / "no leak detected: ..." without
      exact_copies         {train_share, holdout_share: share of synthetic rows identical to
                           some training / holdout row, matched: {rows_each, train_share,
                           holdout_share, p_value, significant}: the same on equally many rows
                           of each, with an exact one-sided McNemar test}
      rare_values          {k, rare_values, rare_rows, unseen_values, unseen_rows,
                           rare_rows_share, columns: {col: counts}, note}: synthetic category
                           values held by 1..k-1 training rows (rare) or none (unseen);
                           counted, never listed
      note                 the audit is not DP; aggregates only, no rare or extreme value
    subsampled      [{metric, rows_used: {table: n}, rows_total: {table: n}}] for every
                    metric computed on a sample
    notes           sentences: what was ignored, skipped or defaulted

Images: :func:`synthdata.images.audit.audit_images` returns ``quality`` and ``leakage``
in these key names where they apply, using the shared attacks and bounds here.
"""

from .leakage import exact_copies, leakage_audit, rare_values
from .quality import column_distributions, detection_auc, marginal_tvd, ml_utility, sdmetrics_quality
from .run import AUDIT_FORMAT, audit, summary
from .stats import auroc_delong, clopper_pearson, epsilon_lower_bound, roc_points, tpr_at_fpr
from .tables import AuditTables, prepare

__all__ = [
    "AUDIT_FORMAT",
    "AuditTables",
    "audit",
    "auroc_delong",
    "clopper_pearson",
    "column_distributions",
    "detection_auc",
    "epsilon_lower_bound",
    "exact_copies",
    "leakage_audit",
    "marginal_tvd",
    "ml_utility",
    "prepare",
    "rare_values",
    "roc_points",
    "sdmetrics_quality",
    "summary",
    "tpr_at_fpr",
]
