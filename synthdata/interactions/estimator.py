"""InteractionGAN: private synthetic user–item interactions, with the user as the unit of privacy.

    model = InteractionGAN(epsilon=4.0).fit(frame, user="CustomerID", item="StockCode")
    synthetic = model.sample(1000)      # 1000 synthetic users, one row per (user, item)

The design mirrors the tabular model: **a generator fitted to DP statistics plus a DP-SGD
discriminator**, every read of the real data on one ledger, one user (with all their
interactions) the unit of every sensitivity.

DP statistics (after a DP count of users, which plans the rest):

1. **activity** — the histogram of distinct items per user on log2 bins (each user is in
   one bin: sensitivity 1, whatever their number of items); synthetic users draw their
   basket size from it, so items-per-user follows the real distribution.
2. **catalogue** — per item, the users who hold it, each user counting at most ``k`` of
   their items (a uniform sample; ``k`` is the steward's, or the power of two at the DP
   90th percentile of basket sizes, 8 to 256) with weight ``1/√m`` each (``m``: the items
   the user counts), so one user's whole contribution has L2 norm 1 (sensitivity 1): a
   user with few items gives each a full share of the noise budget instead of a ``√k``-th
   of it (Gopi et al. 2020, "Differentially private set union", weighted Gaussian). Only
   items a user counted are candidates, and only those whose noisy count clears a Gaussian
   threshold are released (:func:`~synthdata.privacy.gaussian_threshold`, failure
   probability booked as δ): an item held by one user appears with probability < δ.

   When few users share the budget (small ε or a small population) the catalogue is
   **frequency-informed, in two passes** (cf. Carvalho et al. 2022, "Incorporating item
   frequency for differentially private set union"): pass 1 (ledger step
   ``"catalogue scores"``) is the weighted count above with Gaussian noise, kept inside
   :func:`select_catalogue` and never published; in pass 2 (step ``"catalogue"``) each
   user puts their whole unit L2 norm on only their ``k'`` items with the highest pass-1
   scores (``1/√k'`` each), so the weight concentrates on items many users hold, and
   the same Gaussian threshold selects the released items. Privacy: pass 1 is
   equivalent to a Gaussian mechanism on the whole item universe (an item nobody holds
   would get pure noise, and nobody reads it), sensitivity 1; given its output, each
   user's pass-2 weights depend only on that output and the user's own items, so
   removing a user changes the pass-2 counts by that user's vector alone (L2 norm ≤ 1,
   at most ``k'`` items, weight ≤ 1 on any one): a Gaussian sparse histogram with the
   threshold analysis above (union bound over ``k'`` items). The pair is an adaptive
   composition of two Gaussian mechanisms, composed by the RDP accountant, plus the
   threshold's δ. See :func:`plan_catalogue` for when two passes are used. The generator
   fits its popularity to the released items' pass-1 scores (whose expectation it can
   compute: the one-pass weighted count), in memory; the model saves pass 2's counts.
3. **co-occurrence** — among the most popular released items, each user's item pairs
   weighted by ``1/√(pairs)`` so that one user's whole contribution has L2 norm 1
   (sensitivity 1 for any basket size).

The generator is a mixture of ``components`` user types, each a distribution over the
catalogue plus one "elsewhere" outcome (the long tail that was not released); a type's
user with ``n`` distinct items holds item ``i`` with probability about ``1-exp(-c π_i)``
(``c`` such that the inclusions add up to ``n``). Its parameters
are fitted by maximum likelihood to the noisy measurements (Gaussian noise of known
scale: least squares in noise units), with expectations computed exactly over types and
basket sizes — post-processing of DP outputs, like private-pgm's estimation step — so
the few dozen types smooth the noise out of the co-occurrence. A **DP-SGD discriminator**
(per-user Poisson sampling and clipping: one user is one example) sees real and
synthetic baskets and adds an adversarial term for what the measured moments miss.

Sampling: a user's basket size from the activity histogram, a type, and that many
distinct catalogue items drawn without replacement (Gumbel top-n).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import DataError, PrivacyError, SynthdataWarning
from ..models.base import Synthesizer, fresh_seed
from ..privacy import (
    budget_split,
    DEFAULT_DELTA,
    DPSGDRequest,
    GaussianRequest,
    NoiseSource,
    PrivacyLedger,
    PrivacyUnit,
    check_delta_for_units,
    check_privacy_parameters,
    gaussian_threshold,
)
from ..privacy.bounding import noun_for_column
from ..privacy.dpsgd import make_dp_optimizer
from ..tabular.networks import Discriminator
from .data import Baskets, baskets_from_frame

__all__ = ["ACTIVITY_BINS", "DEFAULT_BUDGET_SPLIT", "InteractionGAN", "InteractionUnit", "SCORES_STEP",
           "catalogue_counts", "catalogue_threshold", "plan_catalogue", "select_catalogue", "top_item_weights",
           "top_items_per_user"]

MODEL_FORMAT = "synthdata-interaction-gan/1"
#: Relative shares of epsilon (RDP-composed, see synthdata.privacy.plan_noise). The
#: catalogue is what every other figure depends on, so it gets the largest share.
DEFAULT_BUDGET_SPLIT = {"activity": 0.15, "catalogue": 0.45, "cooccurrence": 0.3, "discriminator": 0.1,
                        "audit": 0.0}
COUNT_SHARE, COUNT_CAP = 0.05, 0.1
THRESHOLD_DELTA_SHARE = 0.1
#: Lower edges of the items-per-user bins (log2); the audit's items-per-user TVD uses them too.
ACTIVITY_BINS: tuple[int, ...] = (1, 2, 3, 5, 9, 17, 33, 65, 129, 257, 513)
#: Most released items whose pairs are measured.
MAX_PAIR_ITEMS = 150
#: Default items per user in the catalogue count: the power of two at this quantile of the
#: DP basket sizes, at most MAX_AUTO_CAP (weights make a large cap cheap for small baskets).
CAP_QUANTILE, MAX_AUTO_CAP = 0.9, 256
MIN_USERS = 10
#: Two-pass catalogue: the ledger step of pass 1 (internal scores) and its part of the catalogue's share.
SCORES_STEP = "catalogue scores"
SCORE_SHARE = 0.25
#: Pass 2's k' (items each user puts weight on): the largest power of two with which an item held by
#: this share of the users, all ranking it among their top k', clears the threshold.
HOLDER_SHARE = 0.05
#: A larger k' means the population is large enough for one pass: the release uses two passes up to it.
#: (Online Retail, 568 customers, three runs each: at epsilon 8, k' = 16 and k' = 8 released as many items or
#: more but the synthetic customers' item-kNN lost up to 0.03 of recall@10, the pass-1 popularity the
#: generator fits being noisier; k' = 4 at epsilon 4 halved the items-per-customer TVD. benchmarks/README.md.)
MAX_TOP_ITEMS = 4


class InteractionUnit(PrivacyUnit):
    """One user with all their interactions: every measurement bounds one user's contribution itself."""

    @property
    def description(self) -> str:
        return f"one {self.noun} ({self.column}): all their interactions"

    @property
    def relation(self) -> str:
        return (f"add/remove one {self.noun} with all their interactions (each measurement bounds one "
                f"{self.noun}'s contribution: one activity count, at most {self.max_rows} items weighted to unit L2 "
                "norm in the catalogue count, unit weight in the co-occurrence, one clipped DP-SGD example)")


def _bin_of(sizes: np.ndarray) -> np.ndarray:
    return np.searchsorted(np.asarray(ACTIVITY_BINS), sizes, side="right") - 1


def _bin_range(index: int) -> tuple[int, int]:
    low = ACTIVITY_BINS[index]
    high = ACTIVITY_BINS[index + 1] - 1 if index + 1 < len(ACTIVITY_BINS) else 2 * low - 1
    return low, high


class _Mixture(nn.Module):
    """User types: component weights and per-type logits over the catalogue plus "elsewhere"."""

    def __init__(self, components: int, items: int, base: np.ndarray) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(components))
        self.base = nn.Parameter(torch.as_tensor(base, dtype=torch.float32))
        self.types = nn.Parameter(torch.randn(components, items + 1) * 0.5)

    def probabilities(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(type weights K, item probabilities K x (items + 1), the last column "elsewhere")."""
        return F.softmax(self.weights, 0), F.softmax(self.base[None, :] + self.types, 1)


@dataclass
class _Measurements:
    users: float                   # DP count of users
    sizes: np.ndarray              # representative basket size per activity bin
    size_shares: np.ndarray        # DP shares of users per activity bin
    counts: np.ndarray             # noisy catalogue counts of the released items
    counts_sigma: float
    cap: int                       # items per user in the catalogue count
    top: np.ndarray                # positions (in the catalogue) of the items whose pairs were measured
    pairs: np.ndarray | None       # noisy weighted pair counts (upper triangle of top x top)
    pairs_sigma: float
    top_items: int | None = None   # pass 2's k' when the catalogue was selected in two passes (None: one pass)


class InteractionGAN(Synthesizer):
    """Differentially private generator of user–item interaction histories (users are the unit).

    Parameters (keyword-only, stored unchanged; all work happens in :meth:`fit`):
        epsilon / delta: the privacy budget (delta defaults to 1e-6).
        max_items_per_user: items one user contributes to the catalogue count (None: the
            power of two at the DP 90th percentile basket size, between 8 and 256).
        top_items_per_user: the two-pass catalogue's k' (each user's weight on their k'
            items with the highest internal pass-1 scores); None: chosen from the budget
            and the DP user count, one pass when the population is large enough (see
            :func:`plan_catalogue`).
        components: user types of the generator.
        generator_steps / learning_rate: fitting the generator to the measurements.
        epochs / batch_size / max_grad_norm / adversarial_weight: the DP-SGD discriminator
            (expected passes over the users, expected users per batch, clipping norm,
            weight of its signal).
        budget_split: relative shares for activity, catalogue, cooccurrence,
            discriminator and audit (see :data:`DEFAULT_BUDGET_SPLIT`).
        seed: what no privacy rests on (initial weights, sampling from the fitted model).
        insecure_noise_seed: FOR TESTS ONLY: reproducible privacy noise, no privacy.
    """

    model_format = MODEL_FORMAT
    model_name = "interaction-gan"
    fit_signature = "fit(data, user=..., item=...)"

    def __init__(self, *, epsilon: float, delta: float | None = None, max_items_per_user: int | None = None,
                 top_items_per_user: int | None = None, components: int = 32, generator_steps: int = 1000,
                 learning_rate: float = 0.05, epochs: float = 2.0, batch_size: int = 256, max_grad_norm: float = 1.0,
                 adversarial_weight: float = 0.02, budget_split: dict[str, float] | None = None,
                 seed: int | None = None, device: str = "cpu", insecure_noise_seed: int | None = None) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.max_items_per_user = max_items_per_user
        self.top_items_per_user = top_items_per_user
        self.components = components
        self.generator_steps = generator_steps
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.max_grad_norm = max_grad_norm
        self.adversarial_weight = adversarial_weight
        self.budget_split = budget_split
        self.seed = seed
        self.device = device
        self.insecure_noise_seed = insecure_noise_seed

    # ------------------------------------------------------------------ fit

    def fit(self, data: pd.DataFrame | Baskets, *, user: str, item: str, noun: str | None = None,
            progress: Callable[[dict], None] | None = None) -> InteractionGAN:
        """Learn from the interaction table ``data`` (columns ``user`` and ``item``) with DP; returns self.

        Rows without a user or an item are left out before any mechanism (see
        :mod:`synthdata.interactions.data`). ``noun`` names a user in the report
        (default: from the column name, CustomerID -> customer).
        """
        baskets = data if isinstance(data, Baskets) else baskets_from_frame(data, user=user, item=item)
        delta = DEFAULT_DELTA if self.delta is None else self.delta
        check_privacy_parameters(epsilon=self.epsilon, delta=delta)
        split = self._split()
        seed = self.seed if self.seed is not None else fresh_seed() % 2**31
        noun = noun or noun_for_column(user)
        ledger = PrivacyLedger(epsilon=self.epsilon, delta=delta, threshold_delta=delta * THRESHOLD_DELTA_SHARE,
                               unit=InteractionUnit(column=user, max_rows=1, noun=noun),
                               noise=NoiseSource(seed=self.insecure_noise_seed))
        users = ledger.noisy_count(f"{noun} count", len(baskets), epsilon=min(COUNT_SHARE * self.epsilon, COUNT_CAP),
                                   parameters={"what": f"{noun}s"})
        if users < MIN_USERS:
            warnings.warn(f"a DP count says there are about {max(users, 0)} {noun}s; planning for {MIN_USERS}",
                          SynthdataWarning, stacklevel=2)
            users = MIN_USERS
        check_delta_for_units(delta, users, what=f"{noun}s")
        batch = min(self.batch_size, max(1, users // 2))
        rate = batch / users
        d_steps = int(math.ceil(self.epochs * users / batch)) if split["discriminator"] > 0 else 0
        top = self.top_items_per_user
        if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
            raise ValueError(f"top_items_per_user must be a whole number >= 1 or None, got {top!r}")
        top = plan_catalogue(ledger, {name: split[name] for name in ("activity", "catalogue", "cooccurrence", "audit")
                                      if split[name] > 0}, float(users), top=top,
                             dpsgd=DPSGDRequest(sample_rate=rate, steps=d_steps, share=split["discriminator"])
                             if d_steps else None)
        measured, catalogue, fitting = self._measure(baskets, ledger, float(users), noun, top)
        torch.manual_seed(seed)
        mixture = _Mixture(self.components, len(catalogue), np.log(np.maximum(np.r_[fitting.counts,
                                                                                   fitting.counts.sum()], 1.0)))
        discriminator = None
        if d_steps:
            discriminator = self._discriminator(baskets, catalogue, ledger, rate, batch, d_steps)
        self._fit_generator(mixture, fitting, discriminator, progress)
        del fitting  # two passes: it held pass-1 scores, which are never saved or published
        if ledger.epsilon_spent > self.epsilon:  # the plan makes this impossible; never release
            raise PrivacyError(f"internal error: epsilon spent {ledger.epsilon_spent} exceeds {self.epsilon}")
        ledger.unit = InteractionUnit(column=user, max_rows=measured.cap, noun=noun)
        self.user_column_, self.item_column_ = user, item
        self.catalogue_ = catalogue
        self.measurements_ = measured
        self.mixture_ = mixture.eval()
        self.ledger_ = ledger
        self.unit_ = ledger.unit
        self.epsilon_spent_ = ledger.epsilon_spent
        self.delta_ = delta
        self.n_users_ = float(users)
        self.seed_ = seed
        self.fitted_ = True
        return self

    def _split(self) -> dict[str, float]:
        return budget_split(self.budget_split, DEFAULT_BUDGET_SPLIT, positive=("activity", "catalogue"))

    def _measure(self, baskets: Baskets, ledger: PrivacyLedger, users: float, noun: str, top_items: int | None):
        """Activity histogram, thresholded catalogue, co-occurrence of its top items (DP releases)."""
        sizes = baskets.sizes
        exact = np.bincount(_bin_of(sizes[sizes > 0]), minlength=len(ACTIVITY_BINS))
        activity = ledger.noisy("activity", exact, sensitivity=1.0, integer=True,
                                mechanism=f"Gaussian mechanism on the histogram of distinct items per {noun}",
                                parameters={"bins": list(ACTIVITY_BINS)}).astype(float)
        activity_sigma = ledger.planned_multiplier("activity")
        shares = np.where(activity > 2 * activity_sigma, activity, 0.0)
        if shares.sum() <= 0:
            shares = np.maximum(activity, 0.0)
        shares = shares / shares.sum() if shares.sum() > 0 else np.eye(len(ACTIVITY_BINS))[0]
        if self.max_items_per_user is not None:
            cap = int(self.max_items_per_user)
        else:  # the power of two at the DP 90th percentile basket size (post-processing of the activity histogram)
            high_bin = int(min(np.searchsorted(np.cumsum(shares), CAP_QUANTILE), len(ACTIVITY_BINS) - 1))
            cap = int(min(MAX_AUTO_CAP, max(8, 2 ** math.ceil(math.log2(max(_bin_range(high_bin)[1], 1))))))
        if top_items is not None:
            top_items = min(top_items, cap)
        order, noisy, threshold, scores = _select_catalogue(baskets.matrix, ledger, cap, top_items, noun=noun)
        sigma = ledger.planned_multiplier("catalogue")  # the published counts' noise (pass 2 when two passes)
        if len(order) < 2:
            raise DataError(
                f"at epsilon={ledger.epsilon:g} no item is held by enough {noun}s to be released: an item needs a "
                f"noisy weighted count above {threshold:.1f} (so that one held by a single {noun} never appears), and "
                f"{len(order)} cleared it (DP figures; each {noun} adds 1/sqrt(their items counted) to each"
                f"{' of their top ' + str(top_items) if top_items else ''}). Raise epsilon, or release more {noun}s' "
                "data together")
        catalogue = baskets.items[order]
        top = np.arange(min(len(order), MAX_PAIR_ITEMS))
        pairs, pairs_sigma = None, 0.0
        if ledger.plan_ is not None and "cooccurrence" in ledger.plan_.sigmas and len(top) >= 2:
            sub = sp.csr_matrix(baskets.matrix[:, order[top]], dtype=np.float64)
            held = np.diff(sub.indptr)
            pair_count = held * (held - 1) / 2.0
            weights = np.where(pair_count > 0, 1.0 / np.sqrt(np.maximum(pair_count, 1.0)), 0.0)
            gram = (sub.T @ sp.diags(weights) @ sub).toarray()
            upper = np.triu_indices(len(top), 1)
            pairs = ledger.noisy("cooccurrence", gram[upper], sensitivity=1.0,
                                 mechanism=f"Gaussian mechanism on item pairs, each {noun}'s pairs weighted to "
                                           "unit L2 norm", parameters={"items": int(len(top))})
            pairs_sigma = ledger.planned_multiplier("cooccurrence")
        representative = np.array([math.sqrt(low * high) for low, high in map(_bin_range, range(len(ACTIVITY_BINS)))])
        measured = _Measurements(users=users, sizes=representative, size_shares=shares, counts=noisy,
                                 counts_sigma=sigma, cap=cap, top=top, pairs=pairs, pairs_sigma=pairs_sigma,
                                 top_items=top_items)
        self.activity_ = {"bins_from": list(ACTIVITY_BINS), "counts": [int(v) for v in activity],
                          "noise_std": activity_sigma}
        self.catalogue_threshold_ = threshold
        if scores is not None:
            scores_sigma = ledger.planned_multiplier(SCORES_STEP)
            # Two passes: the generator fits the popularity to the released items' pass-1 scores (the one-pass
            # weighted count, whose expectation _expected computes exactly) in a copy that fit() drops; the
            # saved model keeps the pass-2 counts.
            return measured, catalogue, dataclasses.replace(measured, counts=scores, counts_sigma=scores_sigma)
        return measured, catalogue, measured

    # ------------------------------------------------------------------ generator and discriminator

    def _expected(self, mixture: _Mixture, measured: _Measurements):
        """Exact expectations over types and basket sizes: catalogue counts, weighted pair counts, soft baskets."""
        weights, probs = mixture.probabilities()
        sizes = torch.as_tensor(measured.sizes, dtype=torch.float32)
        shares = torch.as_tensor(measured.size_shares, dtype=torch.float32)
        holds = _inclusion(probs, sizes)                                             # K x B x items
        mass = weights[:, None] * shares[None, :]                                   # K x B
        # The catalogue count (one pass, or pass 1 of two): a user with n items counts min(n, cap) of them,
        # each with weight 1/sqrt(that).
        kept = torch.clamp(measured.cap / sizes, max=1.0) / torch.sqrt(torch.clamp(sizes, max=float(measured.cap)))
        counts = measured.users * torch.einsum("kb,kbi->i", mass * kept[None, :], holds)
        pairs = None
        if measured.pairs is not None:
            top = holds[:, :, measured.top]                                          # K x B x T
            held = top.sum(-1)
            w = torch.where(held > 1, 1.0 / torch.sqrt(torch.clamp(held * (held - 1) / 2, min=1.0)),
                            torch.zeros_like(held))
            scaled = (top * torch.sqrt(mass * w + 1e-12)[:, :, None]).reshape(-1, top.shape[-1])
            gram = measured.users * scaled.t() @ scaled
            upper = torch.triu_indices(top.shape[-1], top.shape[-1], 1)
            pairs = gram[upper[0], upper[1]]
        return counts, pairs, holds, mass

    def _fit_generator(self, mixture: _Mixture, measured: _Measurements, discriminator, progress) -> None:
        optimizer = torch.optim.Adam(mixture.parameters(), lr=self.learning_rate)
        target_counts = torch.as_tensor(measured.counts, dtype=torch.float32)
        target_pairs = None if measured.pairs is None else torch.as_tensor(measured.pairs, dtype=torch.float32)
        total = max(self.generator_steps, 1)
        d_every = total / discriminator.steps if discriminator is not None and discriminator.steps else None
        for step in range(total):
            while d_every is not None and discriminator.done < discriminator.steps and discriminator.done <= step / d_every:
                discriminator.step(self, mixture, measured)
            counts, pairs, holds, mass = self._expected(mixture, measured)
            # Squared error in noise units (the Gaussian likelihood), popularity and pairs weighted alike:
            # weighting each of the many noisy pairs like an item count fits their noise (measured).
            loss = (((counts - target_counts) / measured.counts_sigma) ** 2).mean()
            if pairs is not None:
                loss = loss + (((pairs - target_pairs) / measured.pairs_sigma) ** 2).mean()
            if discriminator is not None and self.adversarial_weight > 0:
                soft = holds.reshape(-1, holds.shape[-1])
                adversarial = (mass.reshape(-1) * F.softplus(-discriminator.network(soft))).sum()
                loss = loss + self.adversarial_weight * adversarial
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if progress is not None and (step % 25 == 0 or step == total - 1):
                progress({"step": step + 1, "total": total, "loss": float(loss.detach())})
        while discriminator is not None and discriminator.done < discriminator.steps:  # never fewer than planned
            discriminator.step(self, mixture, measured)

    def _discriminator(self, baskets: Baskets, catalogue: np.ndarray, ledger: PrivacyLedger, rate: float,
                       batch: int, steps: int) -> _DPDiscriminator:
        real = sp.csr_matrix(baskets.restricted(catalogue), dtype=np.float32)
        network = Discriminator(input_dim=len(catalogue), hidden=64)
        optimizer = make_dp_optimizer(
            torch.optim.Adam(network.parameters(), lr=2e-3, betas=(0.5, 0.9)), ledger=ledger, step="discriminator",
            noise_multiplier=ledger.plan_.noise_multiplier, max_grad_norm=self.max_grad_norm, sample_rate=rate,
            expected_batch_size=2 * batch, clipped_before=True,
            parameters={"batch_size_expected": batch, "sampled": "users (one basket each)",
                        "clipping": "exact per-user (one user's basket is one example)"})
        return _DPDiscriminator(network, optimizer, real, ledger.noise, rate, batch, steps)

    # ------------------------------------------------------------------ sample

    def sample(self, users: int, *, seed: int | None = None) -> pd.DataFrame:
        """``users`` synthetic users' histories: one row per (user, item), users named S000001, …"""
        self._check_fitted()
        if users < 0:
            raise ValueError(f"users must be >= 0, got {users}")
        rng = np.random.default_rng(fresh_seed() if seed is None else seed)
        _, _, items = _draw(self.mixture_, self.measurements_, len(self.catalogue_), users, rng)
        width = max(6, len(str(users)))
        ids = np.array([f"S{u + 1:0{width}d}" for u in range(users)], dtype=object)
        user_ids = np.repeat(ids, [len(basket) for basket in items])
        values = self.catalogue_[np.concatenate(items)] if items else np.zeros(0, dtype=object)
        return pd.DataFrame({self.user_column_: user_ids, self.item_column_: values})

    # ------------------------------------------------------------------ persistence

    def _saved_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        m = self.measurements_
        state = {
            "privacy": self.ledger_.state_dict(),
            "user_column": self.user_column_, "item_column": self.item_column_,
            "catalogue": [str(v) for v in self.catalogue_], "catalogue_threshold": self.catalogue_threshold_,
            "activity": self.activity_, "epsilon_spent": self.epsilon_spent_, "delta": self.delta_,
            "n_users": self.n_users_, "components": self.components,
            "measurements": {"users": m.users, "sizes": m.sizes.tolist(), "size_shares": m.size_shares.tolist(),
                             "counts": m.counts.tolist(), "counts_sigma": m.counts_sigma, "cap": m.cap,
                             "top": m.top.tolist(), "pairs_sigma": m.pairs_sigma, "top_items": m.top_items,
                             "pairs": None if m.pairs is None else np.asarray(m.pairs).tolist()},
        }
        return state, self.mixture_.state_dict()

    def _restore_state(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        m = state["measurements"]
        self.measurements_ = _Measurements(
            users=float(m["users"]), sizes=np.asarray(m["sizes"], float), size_shares=np.asarray(m["size_shares"], float),
            counts=np.asarray(m["counts"], float), counts_sigma=float(m["counts_sigma"]), cap=int(m["cap"]),
            top=np.asarray(m["top"], int), pairs=None if m["pairs"] is None else np.asarray(m["pairs"], float),
            pairs_sigma=float(m["pairs_sigma"]),
            top_items=None if m.get("top_items") is None else int(m["top_items"]))
        self.catalogue_ = np.asarray(state["catalogue"], dtype=object)
        mixture = _Mixture(int(state["components"]), len(self.catalogue_), np.zeros(len(self.catalogue_) + 1))
        mixture.load_state_dict(tensors)
        self.mixture_ = mixture.eval()
        self.ledger_ = PrivacyLedger.from_state_dict(state["privacy"])
        unit = self.ledger_.unit
        self.ledger_.unit = InteractionUnit(column=unit.column, max_rows=unit.max_rows, noun=unit.noun)
        self.unit_ = self.ledger_.unit
        self.user_column_, self.item_column_ = state["user_column"], state["item_column"]
        self.catalogue_threshold_ = float(state["catalogue_threshold"])
        self.activity_ = state["activity"]
        self.epsilon_spent_ = float(state["epsilon_spent"])
        self.delta_ = float(state["delta"])
        self.n_users_ = float(state["n_users"])


def _inclusion(probs: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """P(a type-k user with ``sizes[b]`` distinct items holds item i): ``holds[k, b, i]``.

    Drawing n distinct outcomes one after another, each by its probability (what Gumbel
    top-n sampling does), includes outcome i with probability close to ``1 - exp(-c π_i)``,
    with ``c`` set so the inclusions add up to n (the conditional-Poisson approximation,
    Rosén 1997). "Elsewhere" (the last column: the unreleased long tail, never exhausted)
    contributes ``c π``. ``c`` is found by bisection outside the graph; gradients flow
    through π.
    """
    items, elsewhere = probs[:, :-1], probs[:, -1]
    with torch.no_grad():
        low = torch.zeros(probs.shape[0], len(sizes), dtype=probs.dtype)
        high = torch.full_like(low, 1.0)
        target = torch.minimum(sizes[None, :].to(probs.dtype), torch.tensor(float(items.shape[1])) - 1e-3)

        def total(c: torch.Tensor) -> torch.Tensor:
            return (1.0 - torch.exp(-c[:, :, None] * items[:, None, :])).sum(-1) + c * elsewhere[:, None]

        while bool((total(high) < target).any()) and float(high.max()) < 1e12:
            high = torch.where(total(high) < target, high * 4.0, high)
        for _ in range(50):
            middle = (low + high) / 2
            below = total(middle) < target
            low, high = torch.where(below, middle, low), torch.where(below, high, middle)
        c = (low + high) / 2
    return 1.0 - torch.exp(-c[:, :, None] * items[:, None, :])


def _draw(mixture: _Mixture, measured: _Measurements, catalogue: int, users: int, rng: np.random.Generator):
    """(basket sizes, types, item positions per user) of ``users`` synthetic users."""
    with torch.no_grad():
        weights, probs = mixture.probabilities()
    weights = weights.double().numpy()
    logits = np.log(np.maximum(probs[:, :-1].double().numpy(), 1e-30))
    bins = rng.choice(len(ACTIVITY_BINS), size=users, p=measured.size_shares)
    ranges = np.array([_bin_range(b) for b in range(len(ACTIVITY_BINS))])
    sizes = np.minimum(rng.integers(ranges[bins, 0], ranges[bins, 1] + 1), catalogue)
    types = rng.choice(len(weights), size=users, p=weights / weights.sum())
    items = []
    for n, k in zip(sizes, types):  # Gumbel top-n: n distinct items, each by its type's probability
        keys = logits[k] + rng.gumbel(size=logits.shape[1])
        items.append(np.argpartition(-keys, n - 1)[:n] if n < logits.shape[1] else np.arange(logits.shape[1]))
    return sizes, types, items


def catalogue_counts(matrix: sp.csr_matrix, cap: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(items some user counts, their weighted counts): each user counts at most ``cap`` of their
    items (drawn uniformly), each with weight ``1/sqrt(m)`` for the ``m`` items counted, so one
    user's contribution has L2 norm at most 1. Items no user counts are no candidates: an item
    only one user holds and that user's sample left out can then never be released."""
    capped = _cap_items(matrix, cap, rng)
    counted = np.diff(capped.indptr)
    weights = sp.diags(1.0 / np.sqrt(np.maximum(counted, 1))) @ capped
    totals = np.asarray(weights.sum(0)).ravel()
    present = np.flatnonzero(totals > 0)
    return present, totals[present]


def catalogue_threshold(sigma: float, threshold_delta: float, cap: int) -> float:
    """An item only one user counts has weighted count at most 1 and that user counts at most
    ``cap`` items: with this threshold none of them is released, but with probability
    ``threshold_delta`` (union bound over the ``cap`` items)."""
    return gaussian_threshold(sigma=sigma, fail_probability=threshold_delta / cap, max_count=1)


def top_items_per_user(sigma: float, threshold_delta: float, users: float) -> int:
    """Pass 2's k': the largest power of two (at most MAX_AUTO_CAP) with which an item held by
    ``HOLDER_SHARE`` of ``users`` (a DP count), all ranking it among their top k' and adding
    ``1/sqrt(k')`` each, clears the threshold. Post-processing of public figures and DP counts."""
    k = 1
    while 2 * k <= MAX_AUTO_CAP and (catalogue_threshold(sigma, threshold_delta, 2 * k) * math.sqrt(2 * k)
                                     <= HOLDER_SHARE * users):
        k *= 2
    return k


def plan_catalogue(ledger: PrivacyLedger, shares: dict[str, float], users: float, *, dpsgd: DPSGDRequest | None = None,
                   top: int | None = None, max_top: int | None = None) -> int | None:
    """Plan ``ledger`` (Gaussian steps ``shares``, sensitivity 1, and ``dpsgd``) with the catalogue in
    one pass or two; returns pass 2's k' (None: one pass).

    Two passes split the ``"catalogue"`` share: ``SCORE_SHARE`` of it for the internal scores
    (:data:`SCORES_STEP`), the rest for the thresholded counts. With ``top`` None, k' is
    :func:`top_items_per_user` of the two-pass plan; above ``max_top`` (default ``MAX_TOP_ITEMS``)
    the population is large enough for one pass (every counted item weighted ``1/sqrt(m)``),
    which then gets the whole share. Only public figures and the DP user count decide: nothing
    here reads the data.
    """
    def gaussians(two: bool) -> dict[str, GaussianRequest]:
        planned = {}
        for name, share in shares.items():
            if name == "catalogue" and two:
                planned[SCORES_STEP] = GaussianRequest(sensitivity=1.0, share=share * SCORE_SHARE)
                planned[name] = GaussianRequest(sensitivity=1.0, share=share * (1 - SCORE_SHARE))
            else:
                planned[name] = GaussianRequest(sensitivity=1.0, share=share)
        return planned

    ledger.plan(gaussians=gaussians(True), dpsgd=dpsgd)
    if top is None:
        top = top_items_per_user(ledger.planned_multiplier("catalogue"), ledger.threshold_delta, users)
        if top > (MAX_TOP_ITEMS if max_top is None else max_top):
            ledger.plan(gaussians=gaussians(False), dpsgd=dpsgd)
            return None
    return int(top)


def top_item_weights(matrix: sp.csr_matrix, scores: np.ndarray, top: int, rng: np.random.Generator) -> sp.csr_matrix:
    """Pass 2's weights: each user's ``top`` held items with the highest ``scores`` (ties at random),
    weight ``1/sqrt(min(top, their items))`` each: L2 norm 1 per user, on items the user holds only.
    A user's row reads only the scores of their own items."""
    sizes = np.diff(matrix.indptr)
    owner = np.repeat(np.arange(matrix.shape[0]), sizes)
    order = np.lexsort((rng.random(len(owner)), -np.asarray(scores, dtype=float)[matrix.indices], owner))
    rank = np.arange(len(owner)) - np.repeat(matrix.indptr[:-1], sizes)
    keep = np.sort(order[rank < top])
    weights = 1.0 / np.sqrt(np.minimum(sizes, top)[owner[keep]])
    return sp.csr_matrix((weights, (owner[keep], matrix.indices[keep])), shape=matrix.shape)


def select_catalogue(matrix: sp.csr_matrix, ledger: PrivacyLedger, cap: int, top: int | None, *,
                     noun: str = "user") -> tuple[np.ndarray, np.ndarray, float]:
    """The DP catalogue: (positions of the released items, most popular first; their noisy counts;
    the threshold). Only the released items' counts leave: a candidate only one user holds
    is private unless it clears the threshold (probability below the booked δ), so even the
    largest count below the threshold is not returned.

    ``top`` None: one pass, each user's (at most ``cap``) counted items weighted to unit L2
    norm. ``top`` = k': two passes (see the module docstring): the pass-1 scores are drawn
    for every held item, read by each user for their own items only, and dropped here —
    they are never returned, saved or published; only pass 2's thresholded counts are.
    """
    return _select_catalogue(matrix, ledger, cap, top, noun=noun)[:3]


def _select_catalogue(matrix: sp.csr_matrix, ledger: PrivacyLedger, cap: int, top: int | None, *,
                      noun: str = "user") -> tuple[np.ndarray, np.ndarray, float, np.ndarray | None]:
    """:func:`select_catalogue` plus, with two passes, the released items' pass-1 scores (None with one
    pass), for the generator's fit only: the estimator fits to them and drops them, never saving them."""
    rng = ledger.noise.generator()
    counted, counts = catalogue_counts(matrix, cap, rng)
    scores = None
    if top is None:
        candidates, values, per_user = counted, counts, cap
        mechanism = ("Gaussian sparse histogram of items, each user's items weighted to unit L2 norm (released above "
                     "the threshold)")
        parameters = {"items_per_user": cap, "weight": "1/sqrt(items the user counts)"}
    else:
        scores = np.zeros(matrix.shape[1])
        scores[counted] = counts
        scores = ledger.noisy(
            SCORES_STEP, scores, sensitivity=1.0,
            mechanism=f"Gaussian mechanism on every item's weighted count of {noun}s (pass 1 of 2: internal scores "
                      f"that rank each {noun}'s own items; never published)",
            parameters={"items_per_user": cap, "weight": "1/sqrt(items the user counts)", "published": False})
        weights = top_item_weights(matrix, scores, int(top), rng)
        totals = np.asarray(weights.sum(0)).ravel()
        candidates = np.flatnonzero(totals > 0)
        values, per_user = totals[candidates], int(top)
        mechanism = (f"Gaussian sparse histogram of items (pass 2 of 2), each {noun}'s weight on their {per_user} "
                     "items with the highest pass-1 scores, unit L2 norm (released above the threshold)")
        parameters = {"items_per_user": per_user, "weight": "1/sqrt(items selected)",
                      "selected_by": "pass-1 scores (catalogue scores)"}
    threshold = catalogue_threshold(ledger.planned_multiplier("catalogue"), ledger.threshold_delta, per_user)
    noisy = np.asarray(ledger.noisy("catalogue", values, sensitivity=1.0, mechanism=mechanism,
                                    parameters={**parameters, "threshold": round(threshold, 3),
                                                "threshold_delta": ledger.threshold_delta},
                                    extra_delta=ledger.threshold_delta), dtype=float)
    released = np.flatnonzero(noisy > threshold)
    order = released[np.argsort(-noisy[released], kind="stable")]
    kept = None if top is None else scores[candidates[order]]
    return candidates[order], noisy[order], threshold, kept


def _cap_items(matrix: sp.csr_matrix, cap: int, rng: np.random.Generator) -> sp.csr_matrix:
    """Each user's row with at most ``cap`` of their items kept, drawn uniformly (contribution bounding)."""
    sizes = np.diff(matrix.indptr)
    owner = np.repeat(np.arange(matrix.shape[0]), sizes)
    order = np.lexsort((rng.random(len(owner)), owner))
    rank = np.arange(len(owner)) - np.repeat(matrix.indptr[:-1], sizes)
    keep = np.sort(order[rank < cap])
    return sp.csr_matrix((np.ones(len(keep), dtype=np.float32), (owner[keep], matrix.indices[keep])),
                         shape=matrix.shape)


class _DPDiscriminator:
    """The DP-SGD discriminator: Poisson-sampled real users vs sampled synthetic baskets."""

    def __init__(self, network: Discriminator, optimizer, real: sp.csr_matrix, sampler, rate: float, batch: int,
                 steps: int) -> None:
        self.network, self.optimizer, self.real = network, optimizer, real
        self.sampler, self.rate, self.batch, self.steps, self.done = sampler, rate, batch, steps, 0
        self.rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ()).item()))  # seeded by fit: no privacy

    def step(self, model: InteractionGAN, mixture: _Mixture, measured: _Measurements) -> None:
        chosen = self.sampler.poisson_sample(self.real.shape[0], self.rate)
        real = torch.as_tensor(self.real[np.sort(chosen)].toarray(), dtype=torch.float32)
        fake = torch.zeros(self.batch, self.real.shape[1])
        _, _, items = _draw(mixture, measured, self.real.shape[1], self.batch, self.rng)
        for row, basket in enumerate(items):
            fake[row, basket] = 1.0
        rows = torch.cat([real, fake])
        labels = torch.cat([torch.ones(len(real)), torch.zeros(self.batch)])
        self.optimizer.zero_grad(set_to_none=True)
        self.network.clipped_backward(rows, lambda logits: F.binary_cross_entropy_with_logits(
            logits, labels, reduction="none"), max_grad_norm=self.optimizer.max_grad_norm)
        self.optimizer.step()
        self.done += 1
