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
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .. import __version__
from ..checkpoint import Checkpointer
from ..encoding import TabularEncoder
from ..errors import ModelError, PrivacyError
from ..ingest import from_frame
from ..privacy import DPSGDRequest, GaussianRequest, PrivacyLedger, check_privacy_parameters, default_delta, plan_noise
from ..schema import Schema, infer_schema
from ..training import MeasuredMarginals, TrainingPlan, measure_marginals, train
from .persistence import META_NAME, WEIGHTS_NAME, read_model, weights_sha256
from .networks import Generator, Segments

__all__ = ["TabularGAN", "resolve_device"]

MODEL_FORMAT = "synthdata-tabular-gan/1"
#: Shares of epsilon, each as if spent alone; RDP composition lets them add up to more
#: than 1 while the total stays at epsilon (see :func:`synthdata.privacy.plan_noise`).
#: Relative weights (normalised to sum 1). Measured on Adult at epsilon=1 (see
#: benchmarks/README.md): a larger discriminator share costs marginal accuracy
#: (pair trends 0.864 at 0.25, 0.868 at 0.1, 0.895 at 0) without raising ML utility.
DEFAULT_BUDGET_SPLIT = {"preprocessing": 0.25, "selection": 0.05, "marginals": 0.45, "discriminator": 0.1}
#: Rows generated at a time when sampling (the intermediates fit in a core's cache).
SAMPLE_BLOCK_ROWS = 4096
#: Share of delta reserved for the sparse histograms' thresholds.
THRESHOLD_DELTA_SHARE = 0.1


def _encode(encoder: TabularEncoder, frame: pd.DataFrame, schema: Schema, seed: int) -> np.ndarray:
    """Training rows as levels; its own seeded stream, so a resumed fit sees the same codes."""
    return encoder.encode(frame, schema, rng=np.random.default_rng([seed, 1]))


def _measured_pairs(ledger: PrivacyLedger) -> list[tuple[str, str]]:
    for spend in ledger.spends:
        if spend.step == "marginals":
            return [tuple(pair) for pair in spend.parameters.get("pairs", [])]
    return []


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` is CUDA when available, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ModelError(f"unknown device {device!r}; use auto, cpu or cuda") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ModelError("device 'cuda' was asked for but no CUDA GPU is available; use --device auto or cpu")
    return resolved


class TabularGAN:
    """Differentially private GAN for mixed-type tables.

    Parameters (keyword-only, stored unchanged; all work happens in :meth:`fit`):
        epsilon: the privacy budget; never exceeded.
        delta: defaults to min(1/(n ln n), 1e-5), well below 1/n.
        epochs: passes of the DP discriminator over the data (in expectation).
        batch_size: expected size of the Poisson-sampled real batches.
        generator_steps: optimisation steps of the generator.
        seed: makes a CPU run reproducible; drawn at random when None.
        device: "auto" (CUDA when present), "cpu" or "cuda".
        budget_split: shares of epsilon for preprocessing, selection, marginals, discriminator.
        digits: significant digits of the public grid numbers are released on.
        max_levels / max_coarse: levels per column for 1-way / 2-way marginals.
        max_pairs: most 2-way marginals measured.
        adversarial_weight: weight of the discriminator's signal in the generator's loss.
        progress: a callable receiving progress dicts, or None.
    """

    def __init__(self, *, epsilon: float, delta: float | None = None, epochs: float = 4.0,
                 batch_size: int = 1024, generator_steps: int = 1500, seed: int | None = None,
                 device: str = "auto", budget_split: dict[str, float] | None = None, digits: int = 2,
                 max_levels: int = 32, max_coarse: int = 16, max_pairs: int = 105,
                 adversarial_weight: float = 0.05, max_grad_norm: float = 1.0, learning_rate: float = 2e-2,
                 progress=None) -> None:
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
        self.progress = progress

    # ------------------------------------------------------------------ fit

    def fit(self, data: pd.DataFrame, schema: Schema | None = None, *,
            checkpoint_dir: str | os.PathLike | None = None, resume: bool = False,
            checkpoint_every: int = 100) -> TabularGAN:
        """Learn from ``data`` (a DataFrame) with differential privacy; returns self.

        With ``checkpoint_dir``, the fit saves its state there every ``checkpoint_every``
        steps; ``resume=True`` continues a killed fit from it, continuing the privacy
        count (the private measurements are reused, never repeated).
        """
        table = from_frame(data)
        frame = table.frame
        if schema is None:
            schema = infer_schema(frame)
        else:
            schema.check_frame(frame)
        frame = frame[schema.names]
        rows = len(frame)
        delta = self.delta if self.delta is not None else default_delta(rows)
        check_privacy_parameters(epsilon=self.epsilon, delta=delta, n=rows)
        device = resolve_device(self.device)
        checkpoint = Checkpointer(checkpoint_dir, every=checkpoint_every) if checkpoint_dir is not None else None
        params = {k: v for k, v in self.get_params().items() if k != "progress"}

        if resume:
            if checkpoint is None:
                raise ModelError("resume needs a checkpoint directory (--checkpoint-dir)")
            setup = checkpoint.load_setup()
            if setup["input_sha256"] != table.sha256 or setup["schema"] != schema.to_dict():
                raise ModelError(f"the checkpoint in {checkpoint.directory} was made from other data or another "
                                 "schema; resume with the same input, or start afresh in another directory")
            if setup["params"] != json.loads(json.dumps(params)):
                raise ModelError(f"the checkpoint in {checkpoint.directory} was made with other settings; "
                                 "resume with the same settings")
            seed = setup["seed"]
            encoder = TabularEncoder.from_state_dict(setup["encoder"])
            marginals = MeasuredMarginals.from_dict(setup["marginals"])
            training = TrainingPlan(**setup["plan"])
            state = checkpoint.load_training()
            ledger = PrivacyLedger.from_state_dict(json.loads(state["ledger"]) if state else setup["ledger"])
        else:
            if checkpoint is not None and checkpoint.exists():
                raise ModelError(f"{checkpoint.directory} already holds a checkpoint; resume it (--resume) "
                                 "or choose another directory")
            seed = self.seed if self.seed is not None else secrets.randbits(31)
            encoder, codes, marginals, training, ledger = self._measure(frame, schema, rows, delta, seed)
            state = None
            if checkpoint is not None:
                checkpoint.save_setup({
                    "input_sha256": table.sha256, "schema": schema.to_dict(), "params": params, "seed": seed,
                    "encoder": encoder.state_dict(), "marginals": marginals.to_dict(),
                    "plan": dataclasses.asdict(training), "ledger": ledger.state_dict(),
                })

        if resume:  # seeded on its own: a resumed fit sees the same training codes
            codes = _encode(encoder, frame, schema, seed)
        generator = train(plan=training, marginals=marginals, encoder=encoder, codes=codes, ledger=ledger,
                          device=device, seed=seed, progress=self.progress, checkpoint=checkpoint, resume=state)
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
        self.training_ = training
        self.pairs_ = _measured_pairs(ledger)
        return self

    def _measure(self, frame: pd.DataFrame, schema: Schema, rows: int, delta: float, seed: int):
        """The private releases: plan all noise up front, then preprocessing and marginals."""
        rng = np.random.default_rng(seed)
        split = {**DEFAULT_BUDGET_SPLIT, **(self.budget_split or {})}
        unknown = set(split) - set(DEFAULT_BUDGET_SPLIT)
        if unknown:
            raise PrivacyError(f"unknown budget_split part {sorted(unknown)[0]!r}; "
                               f"parts are {', '.join(DEFAULT_BUDGET_SPLIT)}")
        if split["preprocessing"] <= 0 or (split["marginals"] > 0 and split["selection"] <= 0):
            raise PrivacyError("budget_split needs a positive share for preprocessing, and for selection "
                               "whenever marginals are measured")
        batch = min(self.batch_size, max(1, rows // 2))
        sample_rate = batch / rows
        d_steps = int(math.ceil(self.epochs * rows / batch)) if split["discriminator"] > 0 else 0
        threshold_delta = delta * THRESHOLD_DELTA_SHARE
        plan = plan_noise(
            epsilon=self.epsilon,
            delta=delta,
            gaussians={name: GaussianRequest(sensitivity=1.0, share=split[name])
                       for name in ("preprocessing", "selection", "marginals") if split[name] > 0},
            dpsgd=DPSGDRequest(sample_rate=sample_rate, steps=d_steps, share=split["discriminator"])
            if d_steps else None,
            threshold_delta=threshold_delta,
        )
        ledger = PrivacyLedger(epsilon=self.epsilon, delta=delta, threshold_delta=threshold_delta)
        encoder = TabularEncoder(digits=self.digits, max_levels=self.max_levels, max_coarse=self.max_coarse)
        encoder.fit(frame, schema, ledger=ledger, noise_multiplier=plan.sigmas["preprocessing"],
                    threshold_delta=threshold_delta, rng=rng)
        codes = _encode(encoder, frame, schema, seed)
        marginals = measure_marginals(
            codes, encoder, ledger=ledger,
            select_multiplier=plan.sigmas.get("selection", math.inf),
            measure_multiplier=plan.sigmas.get("marginals", math.inf),
            max_pairs=self.max_pairs if "marginals" in plan.sigmas else 0, rng=rng)
        training = TrainingPlan(
            generator_steps=self.generator_steps,
            generator_batch=1024,
            discriminator_steps=d_steps,
            sample_rate=sample_rate,
            noise_multiplier=plan.noise_multiplier,
            max_grad_norm=self.max_grad_norm,
            adversarial_weight=self.adversarial_weight,
            learning_rate=self.learning_rate,
        )
        return encoder, codes, marginals, training, ledger

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
        seed = self.seed_ + 1 if seed is None else seed
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

    def save(self, path: str | os.PathLike) -> None:
        """Write the model as JSON + tensors (no pickle) into directory ``path``."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        weights = path / WEIGHTS_NAME
        torch.save(self.generator_.state_dict(), weights)
        meta = {
            "format": MODEL_FORMAT,
            "synthdata_version": __version__,
            "params": {k: v for k, v in self.get_params().items() if k != "progress"},
            "schema": self.schema_.to_dict(),
            "encoder": self.encoder_.state_dict(),
            "privacy": self.ledger_.state_dict(),
            "generator": {"components": self.generator_.components,
                          "noise_dim": self.generator_.noise_dim,
                          "hidden": self.generator_.net[0].out_features,
                          "output_dim": self.generator_.net[-1].out_features,
                          "sha256": weights_sha256(path)},
            "state": {"epsilon_spent": self.epsilon_spent_, "delta": self.delta_, "seed": self.seed_,
                      "n_rows": self.n_rows_, "columns": self.columns_, "pairs": self.pairs_},
        }
        (path / META_NAME).write_text(json.dumps(meta, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> TabularGAN:
        """Load a saved model; refuses anything tampered with or not written by :meth:`save`."""
        meta, state = read_model(path, MODEL_FORMAT)
        try:
            model = cls(**meta["params"])
            g = meta["generator"]
            generator = Generator(components=g["components"], noise_dim=g["noise_dim"], hidden=g["hidden"],
                                  output_dim=g["output_dim"])
            generator.load_state_dict(state)
            generator.eval()
            model.schema_ = Schema.from_dict(meta["schema"])
            model.encoder_ = TabularEncoder.from_state_dict(meta["encoder"])
            model.ledger_ = PrivacyLedger.from_state_dict(meta["privacy"])
            s = meta["state"]
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ModelError(f"{path}: the saved model is incomplete or inconsistent ({exc})") from None
        model.generator_ = generator
        model.epsilon_spent_ = s["epsilon_spent"]
        model.delta_ = s["delta"]
        model.seed_ = s["seed"]
        model.n_rows_ = s["n_rows"]
        model.columns_ = s["columns"]
        model.pairs_ = [tuple(p) for p in s["pairs"]]
        return model

    # ------------------------------------------------------------------ sklearn-style helpers

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in (
            "epsilon", "delta", "epochs", "batch_size", "generator_steps", "seed", "device", "budget_split",
            "digits", "max_levels", "max_coarse", "max_pairs", "adversarial_weight", "max_grad_norm", "learning_rate",
            "progress")}

    def _check_fitted(self) -> None:
        if not hasattr(self, "generator_"):
            raise ModelError("this TabularGAN is not fitted yet; call fit(data) first")

    def __repr__(self) -> str:
        return f"TabularGAN(epsilon={self.epsilon!r}, delta={self.delta!r}, seed={self.seed!r})"
