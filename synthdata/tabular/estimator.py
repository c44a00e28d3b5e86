"""TabularGAN: the differentially private synthesiser for tables (scikit-learn style).

    model = TabularGAN(epsilon=1.0, seed=0).fit(df)
    synthetic = model.sample(10_000)
    model.save("model_dir"); TabularGAN.load("model_dir")

``fit`` is the pipeline for one table: plan the noise for the whole budget up front,
release the columns' histograms (DP preprocessing), measure the most informative 2-way
marginals, then train the generator against them and against a DP-SGD discriminator.
Every read of the real rows is charged to :attr:`ledger_`; :attr:`epsilon_spent_` never
exceeds ``epsilon``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..checkpoint import Checkpointer
from ..engines import EngineView
from ..errors import DataError, ModelError, PrivacyError, SynthdataWarning
from ..ingest import from_frame
from ..models.base import Synthesizer, fresh_seed
from ..privacy import (
    budget_split,
    DEFAULT_DELTA,
    ROW,
    DPSGDRequest,
    GaussianRequest,
    NoiseSource,
    PrivacyLedger,
    PrivacyUnit,
    check_delta_for_units,
    check_privacy_parameters,
)
from ..privacy.bounding import ROWS_PER_UNIT_STEP, UnitRequest, bound_contributions, unit_codes
from ..runtime import resolve_device
from ..schema import Excluded, Schema
from .encoding import TabularEncoder
from .inference import infer_schema_private, schema_noise
from .marginals import MeasuredMarginals, measure_marginals, measure_triples
from .networks import Generator, Segments
from .preflight import preflight
from .stats import FrameStats, table_stats
from .training import TrainingPlan, plan_discriminator, train

__all__ = ["TabularGAN"]

MODEL_FORMAT = "synthdata-tabular-gan/2"
#: Shares of epsilon, each as if spent alone; RDP composition lets them add up to more
#: than 1 while the total stays at epsilon (see :func:`synthdata.privacy.plan_noise`).
#: Relative weights (normalised to sum 1). Measured on Adult at epsilon=1 (see
#: benchmarks/README.md): a larger discriminator share costs marginal accuracy
#: (pair trends 0.864 at 0.25, 0.868 at 0.1, 0.895 at 0) without raising ML utility.
#: Preprocessing 0.35 (was 0.25): its threshold decides which values exist at all, and
#: at epsilon=1 it was the largest source of 1-way error (issue 11; benchmarks/README.md).
#: Schema 0.15 (was 0.05): at 0.05 the noise of the column-type counts on a 10,000-row
#: table was 3% of the rows, so a column of 90% zeros and 10% tenths (0.2, 0.4, ...) was
#: read as whole numbers; 0.15 costs the other releases about 3% more noise (issue 11).
#: "schema" is spent only when no schema is declared; "audit" is reserved for a
#: release's public audit figures and spent by the release, not by fit; "units" (the
#: histogram of rows per person) only with a privacy unit column.
DEFAULT_BUDGET_SPLIT = {"schema": 0.15, "preprocessing": 0.35, "selection": 0.05, "marginals": 0.45,
                        "discriminator": 0.1, "audit": 0.0, "units": 0.1, "selection3": 0.0, "marginals3": 0.0}
#: With a declared target (and no 3-way shares named in ``budget_split``), these shares
#: replace the defaults'. Empty: off. ``{"selection3": 0.0, "marginals3": 0.2}`` measures
#: the 3-way marginals of the target with two of its TARGET_TRIPLE_PARTNERS columns most
#: dependent on it in the released 2-way marginals (post-processing: no selection step;
#: see :func:`~synthdata.tabular.marginals.measure_triples`). Off: on the online-shoppers
#: table at epsilon 1, over 6 fits paired by test noise seed, ML AUROC +0.006 on average (one
#: fit -0.019) and 2-way TVD +0.004: no clear gain (issue 11). ``budget_split`` with 3-way
#: shares and a target selects among the triples holding the target with noisy scores instead.
TARGET_TRIPLES_SPLIT: dict[str, float] = {}
TARGET_TRIPLE_PARTNERS = 3
#: Share of epsilon of the DP row count, spent first (pure ε, discrete Laplace) so that
#: the batch sampling rate and the number of steps are planned from it, never from n.
COUNT_SHARE = 0.05
#: Most epsilon the count ever takes (a count needs little: at 0.1 its noise is ±10).
COUNT_CAP = 0.1
#: Without a declared schema, its share of epsilon is raised (to at most SCHEMA_SHARE_CAP)
#: until the noise of the column-type counts is below 1/SCHEMA_NOISE_ROWS of the DP row
#: count: a small table's types are then still told from the noise. Cheap: under RDP,
#: 0.05 -> 0.2 cuts that noise 3.4x and adds 7% to the noise of everything else.
SCHEMA_NOISE_ROWS = 12
SCHEMA_SHARE_CAP = 0.3
#: Rows generated at a time when sampling (the intermediates fit in a core's cache).
SAMPLE_BLOCK_ROWS = 4096
#: Share of delta reserved for the sparse histograms' thresholds.
THRESHOLD_DELTA_SHARE = 0.1
#: Fewest rows a plan assumes, whatever the noisy count says.
MIN_ROWS = 10


def _encode(encoder: TabularEncoder, frame: pd.DataFrame, schema: Schema, seed: int) -> np.ndarray:
    """Training rows as levels, as every engine encodes them (a resumed fit sees the same codes)."""
    return FrameStats(frame).encode(encoder, schema, seed)


def _rebound(frame: pd.DataFrame, request: UnitRequest, ledger: PrivacyLedger) -> tuple[pd.DataFrame, np.ndarray]:
    """A resumed fit's rows: at most the saved cap per unit, drawn afresh from the ledger's CSPRNG."""
    from ..privacy.bounding import _sample_rows

    codes, units = unit_codes(frame[request.column])
    keep = _sample_rows(codes, units, ledger.unit.max_rows, ledger.noise.generator())
    return frame.iloc[keep].drop(columns=[request.column]).reset_index(drop=True), codes[keep]


def _one_row_per_unit(groups: np.ndarray) -> np.ndarray:
    """The position of each unit's first kept row (kept rows are already a uniform sample)."""
    _, first = np.unique(groups, return_index=True)
    return np.sort(first)


def _raise_schema_share(split: dict[str, float], ledger: PrivacyLedger, count: int, columns: int, what: str) -> bool:
    """Give the schema a larger share when, at the planned noise, a small table's column
    types could not be told from the noise; True when the share was raised (plan again).

    The share needed is computed from the plan at hand, not searched for (each plan costs
    seconds with DP-SGD at a high sampling rate): a Gaussian's standalone epsilon scales
    about as 1/σ, and the plan gives each release epsilon in proportion to its share, so
    the share is scaled by how much the noise must shrink (with a margin for the σ⁻²
    term and for the composition). One more plan usually suffices; the cap ends it.

    Post-processing of the DP count: the shares depend on it, never on the exact rows.
    """
    most = count / (SCHEMA_NOISE_ROWS * schema_noise(1.0, columns))  # the noise multiplier that still tells
    multiplier = ledger.planned_multiplier("schema")
    if multiplier <= most:
        return False
    if split["schema"] >= SCHEMA_SHARE_CAP:
        warnings.warn(f"a DP count says the table holds about {count:,} {what}: too few for the column types to "
                      f"be decided privately from {split['schema']:.0%} of epsilon with confidence; some columns may "
                      "be left out or read coarsely. Declare a schema (synthdata inspect --schema-out, then "
                      "--schema): what it declares is public and costs nothing", SynthdataWarning, stacklevel=4)
        return False
    standalone = ledger.plan_.standalone
    share = standalone["schema"] / math.fsum(standalone.values())  # the schema's share, normalised as planned
    wanted = min(share * (multiplier / most) * 1.15, 0.99)
    others = split["schema"] * (1 - share) / share  # the other planned shares, in the split's units
    split["schema"] = min(max(wanted * others / (1 - wanted), split["schema"] * 1.05), SCHEMA_SHARE_CAP)
    return True


def _drop_uninformative(schema: Schema, encoder: TabularEncoder) -> Schema:
    """Leave out, with a warning, the columns the encoder released fewer than two values of."""
    dropped = dict(encoder.dropped_)
    if not dropped:
        return schema
    if len(dropped) == len(encoder.codes_):
        by_reason: dict[str, list[str]] = {}  # one line: each reason once, with the columns it applies to
        for name, reason in dropped.items():
            by_reason.setdefault(reason, []).append(repr(name))
        raise DataError("no column can be released at this privacy budget: " + "; ".join(
            f"{', '.join(names[:6])}{f' and {len(names) - 6} more' if len(names) > 6 else ''}: {reason}"
            for reason, names in by_reason.items()))
    for name, reason in dropped.items():
        warnings.warn(f"column {name!r} is left out: {reason}", SynthdataWarning, stacklevel=4)
    encoder.drop(list(dropped))
    return dataclasses.replace(schema, columns=tuple(c for c in schema if c.name not in dropped),
                               excluded=schema.excluded + tuple(Excluded(name, reason.split(" (")[0])
                                                                for name, reason in dropped.items()))


def _measured_pairs(ledger: PrivacyLedger) -> list[tuple[str, str]]:
    for spend in ledger.spends:
        if spend.step == "marginals":
            return [tuple(pair) for pair in spend.parameters.get("pairs", [])]
    return []


class TabularGAN(Synthesizer):
    """Differentially private GAN for mixed-type tables.

    Parameters (keyword-only, stored unchanged; all work happens in :meth:`fit`):
        epsilon: the privacy budget; never exceeded.
        delta: defaults to 1e-6 (fixed in advance, never read off the data); must be well
            below 1/n, judged on a DP count of the rows.
        epochs: passes of the DP discriminator over the data (in expectation).
        batch_size: expected size of the Poisson-sampled real batches.
        generator_steps: optimisation steps of the generator (post-processing: no privacy cost;
            3,000 by default — on Adult at epsilon=10, 1,500 steps left it under-trained,
            AUROC 0.891–0.893 against 0.902–0.903 with 3,000, benchmarks/README.md).
        seed: makes what no privacy rests on reproducible (initial weights, sampling from
            the fitted model); the privacy noise never depends on it.
        device: "auto" (CUDA when present), "cpu" or "cuda".
        budget_split: relative shares of epsilon for schema, preprocessing, selection,
            marginals, discriminator and audit (see :data:`DEFAULT_BUDGET_SPLIT`).
        digits: significant digits of the public grid numbers are released on.
        max_levels / max_coarse: levels per column for 1-way / 2-way marginals.
        max_pairs: most 2-way marginals measured.
        adversarial_weight: weight of the discriminator's signal in the generator's loss.
        max_grad_norm: per-sample clipping norm of the discriminator.
        learning_rate: of the generator (Adam, cosine schedule).
        insecure_noise_seed: FOR TESTS ONLY. Makes the privacy noise reproducible, which
            removes the privacy guarantee; the ledger and any report say so. Never set it
            for data that matters.
    """

    model_format = MODEL_FORMAT
    model_name = "tabular-gan"
    fit_signature = "fit(data)"

    def __init__(self, *, epsilon: float, delta: float | None = None, epochs: float = 4.0,
                 batch_size: int = 1024, generator_steps: int = 3000, seed: int | None = None,
                 device: str = "auto", budget_split: dict[str, float] | None = None, digits: int = 2,
                 max_levels: int = 32, max_coarse: int = 16, max_pairs: int = 105,
                 adversarial_weight: float = 0.05, max_grad_norm: float = 1.0, learning_rate: float = 2e-2,
                 insecure_noise_seed: int | None = None) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.epochs = epochs
        self.batch_size = batch_size
        self.generator_steps = generator_steps
        self.seed = seed
        self.device = device
        self.budget_split = budget_split
        self.digits = digits
        self.max_levels = max_levels
        self.max_coarse = max_coarse
        self.max_pairs = max_pairs
        self.adversarial_weight = adversarial_weight
        self.max_grad_norm = max_grad_norm
        self.learning_rate = learning_rate
        self.insecure_noise_seed = insecure_noise_seed

    # ------------------------------------------------------------------ fit

    def fit(self, data: pd.DataFrame, schema: Schema | None = None, *,
            checkpoint_dir: str | os.PathLike | None = None, resume: bool = False,
            checkpoint_every: int = 100, progress: Callable[[dict], None] | None = None,
            unit: PrivacyUnit | UnitRequest | str | None = ROW, target: str | None = None) -> TabularGAN:
        """Learn from ``data`` (a DataFrame) with differential privacy; returns self.

        Without ``schema``, the columns' types are decided privately (see
        :mod:`synthdata.tabular.inference`); a declared schema is public and free. With
        ``checkpoint_dir``, the fit saves its state there every ``checkpoint_every``
        steps; ``resume=True`` continues a killed fit from it, continuing the privacy
        count (the private measurements are reused, never repeated). ``progress``
        receives a dict (step, total, loss, epsilon, …) every few steps.

        ``unit`` is the unit of privacy: ``ROW`` (the default), or a person column
        (``"patient_id"``, a :class:`~synthdata.privacy.PrivacyUnit` with a cap, or a
        :class:`~synthdata.privacy.bounding.UnitRequest` whose cap ``None`` is chosen with
        DP). The guarantee is then per person: each person's rows are bounded to the cap
        before any mechanism (see :mod:`synthdata.privacy.bounding`), DP-SGD samples and
        clips persons, and the unit column itself is never modelled or emitted. A schema
        may name the unit too (``"privacy_unit"``); ``unit`` overrides it.

        Before any training, :func:`~synthdata.tabular.preflight.preflight` refuses what
        cannot succeed or would take hours (from public facts and DP outputs only);
        ``target``, the column a release scores utility on, must then be releasable; all
        its pairs are measured, with less noise than the others' (public: the steward names
        it; see :func:`~synthdata.tabular.marginals.pair_weights` and
        :func:`~synthdata.tabular.marginals.target_pairs`).
        """
        engine = isinstance(data, EngineView)  # a table an engine holds (DuckDB, Spark): counts only
        table = None if engine else from_frame(data)
        frame = pd.DataFrame(columns=data.columns) if engine else table.frame
        request = UnitRequest.of(unit)
        if request is None and schema is not None and getattr(schema, "privacy_unit", None):
            request = UnitRequest.of(dict(schema.privacy_unit))
        if request is not None:
            if request.column not in frame.columns:
                raise DataError(f"--privacy-unit {request.column}: no such column; the columns are "
                                + ", ".join(map(str, frame.columns)))
            if schema is not None and request.column in schema.names:
                raise DataError(f"the privacy unit column {request.column!r} is among the schema's columns to "
                                "synthesise; a person's id is never released: move it to 'excluded'")
        if engine and (request is not None or resume or checkpoint_dir is not None):
            raise DataError("a privacy unit column and checkpoints need the table in memory (--engine memory); "
                            f"the {data.engine.name} engine releases with one row as the unit, in one go")
        if engine and type(self)._train_generator is not TabularGAN._train_generator:
            raise DataError(f"the {self.model_name} model needs the table in memory (--engine memory); "
                            f"the {data.engine.name} engine trains the tabular GAN")
        modelled = frame.drop(columns=[request.column]) if request is not None else frame
        if schema is not None:
            schema.check_columns(modelled)
        delta = DEFAULT_DELTA if self.delta is None else self.delta
        check_privacy_parameters(epsilon=self.epsilon, delta=delta)
        split = self._split(schema_declared=schema is not None, unit_column=request is not None)
        if (target is not None and TARGET_TRIPLES_SPLIT and split["marginals"] > 0
                and not {"selection3", "marginals3"} & set(self.budget_split or {})):
            split.update(TARGET_TRIPLES_SPLIT)  # public: the steward declares the target
        device = resolve_device(self.device)
        checkpoint = Checkpointer(checkpoint_dir, every=checkpoint_every) if checkpoint_dir is not None else None
        params = self._saved_params()
        noise = NoiseSource(seed=self.insecure_noise_seed)

        if resume:
            if checkpoint is None:
                raise ModelError("resume needs a checkpoint directory (--checkpoint-dir)")
            setup = checkpoint.load_setup()
            if setup["input_sha256"] != table.sha256 or (schema is not None and setup["schema"] != schema.to_dict()):
                raise ModelError(f"the checkpoint in {checkpoint.directory} was made from other data or another "
                                 "schema; resume with the same input, or start afresh in another directory")
            if setup["params"] != json.loads(json.dumps(params)):
                raise ModelError(f"the checkpoint in {checkpoint.directory} was made with other settings; "
                                 "resume with the same settings")
            seed = self.seed if self.seed is not None else fresh_seed() % 2**31
            schema = Schema.from_dict(setup["schema"])
            encoder = TabularEncoder.from_state_dict(setup["encoder"])
            marginals = MeasuredMarginals.from_dict(setup["marginals"])
            training = TrainingPlan(**setup["plan"])
            rows = float(setup["rows"])
            units_report = setup.get("units")
            units_dp = float(setup.get("units_dp", rows))
            state = checkpoint.load_training()
            ledger_state = json.loads(state["ledger"]) if state else setup["ledger"]
            ledger = PrivacyLedger.from_state_dict(ledger_state)
            ledger.noise = noise
            ledger.plan_ = None
            if ledger.unit.column != (None if request is None else request.column):
                raise ModelError(f"the checkpoint in {checkpoint.directory} protects {ledger.unit.description}; "
                                 "resume with the same privacy unit")
            groups = None
            if request is not None:  # the cap's sample is drawn afresh (CSPRNG): any k rows per unit are sound
                bounded = _rebound(frame, request, ledger)
                frame, groups = bounded
        else:
            if checkpoint is not None and checkpoint.exists():
                raise ModelError(f"{checkpoint.directory} already holds a checkpoint; resume it (--resume) "
                                 "or choose another directory")
            seed = self.seed if self.seed is not None else fresh_seed() % 2**31
            ledger = PrivacyLedger(epsilon=self.epsilon, delta=delta, threshold_delta=delta * THRESHOLD_DELTA_SHARE,
                                   unit=ROW if request is None else request.unit(1), noise=noise)
            measured = self._measure(data if engine else frame, schema, ledger, split, seed, request,
                                     target=target, device=device, progress=progress if engine else None)
            schema, encoder, codes, marginals, training, rows, bounded, frame, units_dp = measured
            groups = None if bounded is None else bounded.groups
            units_report = None if bounded is None else bounded.report()
            state = None
            if checkpoint is not None:
                checkpoint.save_setup({
                    "input_sha256": table.sha256, "schema": schema.to_dict(), "params": params,
                    "encoder": encoder.state_dict(), "marginals": marginals.to_dict(), "rows": rows,
                    "plan": dataclasses.asdict(training), "ledger": ledger.state_dict(), "units_dp": units_dp,
                    **({"units": units_report} if units_report is not None else {}),
                })

        if resume:  # a resumed fit sees the same training codes
            codes = _encode(encoder, schema.conform(frame[schema.names]), schema, seed)
        try:
            generator = self._train_generator(plan=training, marginals=marginals, encoder=encoder, codes=codes,
                                              ledger=ledger, device=device, seed=seed, progress=progress,
                                              checkpoint=checkpoint, resume=state, groups=groups)
        finally:
            if hasattr(codes, "close"):  # an engine's codes: temporary files of real rows' levels
                codes.close()
        if ledger.epsilon_spent > self.epsilon:  # the plan makes this impossible; never release
            raise PrivacyError(f"internal error: epsilon spent {ledger.epsilon_spent} exceeds {self.epsilon}")

        self.schema_ = schema
        self.columns_ = list(schema.names)
        self.encoder_ = encoder
        self.generator_ = generator.to("cpu")
        self.ledger_ = ledger
        self.epsilon_spent_ = ledger.epsilon_spent
        self.delta_ = delta
        self.seed_ = seed
        self.n_rows_ = rows
        self.unit_ = ledger.unit
        self.units_ = units_report
        self.n_units_ = units_dp
        self.training_ = training
        self.pairs_ = _measured_pairs(ledger)
        self.marginals_ = marginals
        self.fitted_ = True
        return self

    def _train_generator(self, **inputs) -> torch.nn.Module:
        """Train the network on the private releases; subclasses (TabularVAE) train another one."""
        return train(**inputs)

    def _split(self, *, schema_declared: bool, unit_column: bool = False) -> dict[str, float]:
        split = budget_split(self.budget_split, DEFAULT_BUDGET_SPLIT)
        if split["preprocessing"] <= 0 or (split["marginals"] > 0 and split["selection"] <= 0) or (
                split["marginals3"] > 0 and split["selection3"] <= 0):
            raise PrivacyError("budget_split needs a positive share for preprocessing, and for selection "
                               "(selection3) whenever marginals (marginals3) are measured")
        if split["marginals3"] <= 0:
            split["selection3"] = 0.0
        if not schema_declared and split["schema"] <= 0:
            raise PrivacyError("budget_split gives the schema no share, but no schema was declared: declare one "
                               "(it is then public and free) or give 'schema' a share")
        if schema_declared:
            split["schema"] = 0.0
        if not unit_column:
            split["units"] = 0.0
        elif split["units"] <= 0:
            raise PrivacyError("budget_split gives 'units' no share, but a privacy unit column needs its rows-per-unit "
                               "histogram")
        return split

    def _measure(self, frame: pd.DataFrame | EngineView, schema: Schema | None, ledger: PrivacyLedger,
                 split: dict[str, float], seed: int, request: UnitRequest | None, *, target: str | None = None,
                 device: Any = "cpu", progress=None):
        """The private releases: count, plan the rest, bound each unit's rows, then schema,
        preprocessing and marginals, every exact count read through the table's statistics
        (:mod:`synthdata.tabular.stats`: in memory or on an engine). Returns them with the
        frame the rest reads (the kept rows, without the unit column; None on an engine)."""
        stats = table_stats(frame, progress=progress)
        frame = stats.frame
        if request is None:
            units, what, step = stats.rows, "rows", "row count"
        else:
            units, what, step = unit_codes(frame[request.column])[1], f"{request.word}s", f"{request.word} count"
        count = ledger.noisy_count(step, units, epsilon=min(COUNT_SHARE * self.epsilon, COUNT_CAP), sensitivity=1.0,
                                   parameters={"what": what})
        if count < MIN_ROWS:
            warnings.warn(f"a DP count says the table holds about {max(count, 0)} {what}; planning for {MIN_ROWS}. "
                          "At this size and budget little can be learned: raise epsilon, or declare public facts "
                          "in a schema", SynthdataWarning, stacklevel=3)
            count = MIN_ROWS
        check_delta_for_units(ledger.delta, count, what=what)
        # Batches sample units (rows, or persons with all their kept rows), each with probability q.
        # The sampling rate, and from it the steps, follow from the DP count; capped at 1/2
        # so that a small table does not make the count's parity decide the step count.
        sample_rate, batch, d_steps = plan_discriminator(count, self.batch_size, self.epochs,
                                                         enabled=split["discriminator"] > 0)
        # Before any plan or training: refuse what cannot succeed or would take hours (public facts, DP count).
        checks = {"count": count, "columns": len(stats.columns) - (request is not None), "ledger": ledger,
                  "target": target, "device": device, "discriminator_steps": d_steps, "discriminator_batch": batch,
                  "in_memory": stats.frame is not None}
        preflight(self, schema=schema, unit_rows=1 if request is None else request.max_rows, **checks)
        while True:
            ledger.plan(
                gaussians={(ROWS_PER_UNIT_STEP if name == "units" else name): GaussianRequest(sensitivity=1.0,
                                                                                            share=split[name])
                           for name in ("units", "schema", "preprocessing", "selection", "marginals", "selection3",
                                        "marginals3", "audit")
                           if split[name] > 0},
                dpsgd=DPSGDRequest(sample_rate=sample_rate, steps=d_steps, share=split["discriminator"])
                if d_steps else None,
            )
            columns = len(stats.columns) - (request is not None)
            if schema is not None or not _raise_schema_share(split, ledger, count, columns, what):
                break
        # Rows measured (kept), rows to generate by default, fake rows per discriminator batch:
        # all DP figures, never the exact counts.
        bounded, kept, rows, fake_rows = None, float(count), float(count), batch
        # The count's noise sd (discrete Laplace of scale b: about b * sqrt(2)), from its ledger line: public.
        kept_noise = math.sqrt(2.0) * [s.parameters["scale"] for s in ledger.spends if s.step == step][-1]
        if request is not None:  # contribution bounding, before any other mechanism reads the rows
            bounded = bound_contributions(frame, request, ledger, step=ROWS_PER_UNIT_STEP)
            frame = frame.iloc[bounded.keep].drop(columns=[request.column]).reset_index(drop=True)
            stats = FrameStats(frame)
            if bounded.rows_kept_dp > float(count):
                kept, kept_noise = bounded.rows_kept_dp, float((bounded.noise_std or {}).get("kept", kept_noise))
            else:
                kept = float(count)
            rows = kept  # synthetic rows by default: what the model represents, at most k per person
            fake_rows = max(1, int(round(batch * kept / count)))
        unit_rows = ledger.unit.max_rows
        if schema is None:
            # Column types need only the shapes of the values, which one row per unit shows:
            # sensitivity 1 instead of the cap (a k-fold smaller noise for a few-fold smaller count).
            sample = stats if bounded is None else frame.iloc[_one_row_per_unit(bounded.groups)]
            schema = infer_schema_private(sample, ledger=ledger, unit_rows=1)
        encoder = TabularEncoder(digits=self.digits, max_levels=self.max_levels, max_coarse=self.max_coarse)
        encoder.fit(None, schema, ledger=ledger, threshold_delta=ledger.threshold_delta, unit_rows=unit_rows,
                    rows=kept, counts=stats.histograms(schema), rows_noise=kept_noise)
        schema = encoder.fitted_schema(_drop_uninformative(schema, encoder))  # halves found or not
        preflight(self, schema=schema, encoder=encoder, rows=kept, unit_rows=unit_rows, **checks)
        codes = stats.encode(encoder, schema, seed)
        # A declared target (public: the release names it) has all its pairs measured, with less noise.
        names = [code.name for code in encoder.codes_]
        target_index = names.index(target) if target in names else None
        marginals = measure_marginals(codes, encoder, ledger=ledger, rows=max(kept, 1.0),
                                      max_pairs=self.max_pairs if split["marginals"] > 0 else 0,
                                      unit_rows=unit_rows, target=target_index)
        # With a declared target, only triples holding it are candidates (none if it was left out).
        if split["marginals3"] > 0 and (target is None or target_index is not None):
            marginals = measure_triples(codes, encoder, marginals, ledger=ledger, rows=max(kept, 1.0),
                                        unit_rows=unit_rows, target=target_index,
                                        partners=TARGET_TRIPLE_PARTNERS if split["selection3"] <= 0 else None)
        training = TrainingPlan(
            generator_steps=self.generator_steps,
            generator_batch=1024,
            discriminator_steps=d_steps,
            sample_rate=sample_rate,
            noise_multiplier=ledger.plan_.noise_multiplier,
            max_grad_norm=self.max_grad_norm,
            adversarial_weight=self.adversarial_weight,
            learning_rate=self.learning_rate,
            expected_batch=batch,
            fake_rows=fake_rows,
        )
        return schema, encoder, codes, marginals, training, rows, bounded, frame, float(count)

    # ------------------------------------------------------------------ sample

    def sample(self, n: int, *, seed: int | None = None) -> pd.DataFrame:
        """``n`` synthetic rows with the input's columns, dtypes and category labels."""
        self._check_fitted()
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if n == 0:
            return self._decode(np.zeros((0, len(self.encoder_.codes_)), dtype=np.int64), np.random.default_rng(0))
        return pd.concat(list(self.sample_chunks(n, seed=seed)), ignore_index=True)

    def sample_chunks(self, n: int, *, chunk_size: int = 50_000, seed: int | None = None):
        """Yield DataFrames of at most ``chunk_size`` rows, ``n`` rows in all (constant memory)."""
        rng, chunks = self._level_chunks(n, chunk_size, seed)
        for levels in chunks:
            yield self._decode(levels, rng)

    def sample_arrow_chunks(self, n: int, *, chunk_size: int = 50_000, seed: int | None = None):
        """The rows of :meth:`sample_chunks` (same seed, same values) as Arrow tables.

        For writing files: no pandas objects in between (see :func:`synthdata.sampling.write_csv`).
        """
        rng, chunks = self._level_chunks(n, chunk_size, seed)
        for levels in chunks:
            yield self.encoder_.decode_arrow(levels, rng=rng).select(self.columns_)

    def _level_chunks(self, n: int, chunk_size: int, seed: int | None):
        """The decoding stream and an iterator of level arrays (rows x columns), one per chunk."""
        self._check_fitted()
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        seed = fresh_seed() if seed is None else seed
        torch_rng = torch.Generator().manual_seed(seed)
        segments = Segments([code.size for code in self.encoder_.codes_])

        def draw(size: int) -> np.ndarray:
            levels = np.empty((size, len(segments.sizes)), dtype=np.int64)
            with torch.no_grad():  # in cache-sized blocks: twice as fast as whole chunks
                for start in range(0, size, SAMPLE_BLOCK_ROWS):
                    rows = min(SAMPLE_BLOCK_ROWS, size - start)
                    logits_t = self.generator_.logits_by_column(rows, generator=torch_rng)
                    levels[start:start + rows] = segments.sample_by_column(logits_t, generator=torch_rng).cpu().numpy().T
            return levels

        def chunks():
            # The next chunk's levels are drawn (torch, outside the GIL) while the
            # caller decodes this one; the draws stay in order, so seeded runs repeat.
            sizes = (min(chunk_size, n - start) for start in range(0, n, chunk_size))
            with ThreadPoolExecutor(max_workers=1) as pool:
                pending = None
                for size in sizes:
                    if pending is None:
                        pending = pool.submit(draw, size)
                        continue
                    levels = pending.result()
                    pending = pool.submit(draw, size)
                    yield levels
                if pending is not None:
                    yield pending.result()

        return np.random.default_rng(seed), chunks()

    def _decode(self, levels: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        return self.encoder_.decode(levels, rng=rng)[self.columns_]

    # ------------------------------------------------------------------ persistence

    def _network_config(self) -> tuple[str, dict[str, Any]]:
        """The saved network's key in model.json and its constructor arguments."""
        return "generator", {"components": self.generator_.components, "noise_dim": self.generator_.noise_dim,
                             "hidden": self.generator_.net[0].out_features,
                             "output_dim": self.generator_.net[-1].out_features}

    def _restore_network(self, state: dict[str, Any], tensors: dict[str, Any]) -> torch.nn.Module:
        g = state["generator"]
        return Generator(components=g["components"], noise_dim=g["noise_dim"], hidden=g["hidden"],
                         output_dim=g["output_dim"])

    def _saved_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        key, config = self._network_config()
        state = {
            "schema": self.schema_.to_dict(),
            "encoder": self.encoder_.state_dict(),
            "privacy": self.ledger_.state_dict(),
            key: config,
            "training": dataclasses.asdict(self.training_),
            "epsilon_spent": self.epsilon_spent_, "delta": self.delta_,
            "n_rows": self.n_rows_, "columns": self.columns_, "pairs": self.pairs_,
            "marginals": self.marginals_.to_dict(),
            "n_units": self.n_units_,
            **({"units": self.units_} if getattr(self, "units_", None) is not None else {}),
        }
        return state, self.generator_.state_dict()

    def _restore_state(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        generator = self._restore_network(state, tensors)
        generator.load_state_dict(tensors)
        generator.eval()
        self.generator_ = generator
        self.schema_ = Schema.from_dict(state["schema"])
        self.encoder_ = TabularEncoder.from_state_dict(state["encoder"])
        self.ledger_ = PrivacyLedger.from_state_dict(state["privacy"])
        self.training_ = TrainingPlan(**state["training"])
        self.epsilon_spent_ = float(state["epsilon_spent"])
        self.delta_ = float(state["delta"])
        self.n_rows_ = float(state["n_rows"])
        self.columns_ = list(state["columns"])
        self.pairs_ = [tuple(p) for p in state.get("pairs", [])]
        self.marginals_ = MeasuredMarginals.from_dict(state["marginals"])
        self.unit_ = self.ledger_.unit
        self.units_ = state.get("units")
        self.n_units_ = float(state.get("n_units", state["n_rows"]))
