"""Training the tabular GAN with differential privacy.

Two private views of the real rows reach the generator, and nothing else does:

1. **Marginals** (:func:`synthdata.tabular.marginals.measure_marginals`): noisy scores pick the column pairs whose
   joint distribution the 1-way marginals explain worst, then those pairs' 2-way
   marginals are measured with the Gaussian mechanism (one release each, charged to the
   ledger). Training the generator to match them is post-processing (as in GEM, Liu et
   al. 2021, and RAP, Aydore et al. 2021).
2. **The discriminator** (:func:`train`), trained with DP-SGD: Poisson-sampled real
   batches, exact per-sample clipping, Gaussian noise from Opacus' DP optimizer, every
   step counted by the ledger through the optimizer's step hook. The real and fake rows
   pass through it together, so no gradient escapes clipping. With a privacy unit
   column, the sampled and clipped example is a *unit* (a person with all their kept
   rows): units are Poisson-sampled, and the sum of a unit's per-row gradients is
   clipped as one (see :meth:`Discriminator.clipped_backward`).

The generator only ever sees the noisy marginals and the private discriminator.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from ..checkpoint import Checkpointer
from ..privacy import PrivacyLedger
from ..privacy.dpsgd import make_dp_optimizer
from .encoding import TabularEncoder
from .marginals import MeasuredMarginals
from .networks import Discriminator, Generator, Segments

__all__ = ["MAX_DISCRIMINATOR_STEPS", "MAX_EXPECTED_BATCH", "TrainingPlan", "plan_discriminator", "train"]

#: Most DP-SGD steps of the discriminator. A large table would otherwise take epochs x n /
#: batch steps (400,000 at 10^8 rows); beyond this the expected batch grows instead, up
#: to MAX_EXPECTED_BATCH, and then the epochs shrink. Fewer, larger Poisson batches at a
#: smaller rate: the accountant then needs less noise per step for the same epsilon
#: (benchmarks/README.md, "scale.py", measures it).
MAX_DISCRIMINATOR_STEPS = 3000
MAX_EXPECTED_BATCH = 4096


def plan_discriminator(count: float, batch_size: int, epochs: float, *, enabled: bool = True,
                       max_steps: int = MAX_DISCRIMINATOR_STEPS,
                       max_batch: int = MAX_EXPECTED_BATCH) -> tuple[float, int, int]:
    """(sampling rate, expected batch, steps) of the DP-SGD discriminator, from a DP count.

    ``epochs / rate`` steps at ``rate = batch_size / count`` (at most 1/2, so that a small
    table does not make the count's parity decide the step count); past ``max_steps`` the
    expected batch grows (to at most ``max_batch``) and the steps are capped. Post-processing
    of the DP count: never read off the rows.
    """
    rate = min(batch_size / count, 0.5)
    steps = int(math.ceil(epochs / rate)) if enabled else 0
    if steps > max_steps:
        batch = min(max(batch_size, int(math.ceil(epochs * count / max_steps))), max(max_batch, batch_size))
        rate = min(batch / count, 0.5)
        steps = min(max_steps, int(math.ceil(epochs / rate)))
    return rate, max(1, round(rate * count)), steps


@dataclass(frozen=True)
class TrainingPlan:
    """What training will do; fixed before it starts so the noise can be planned."""

    generator_steps: int
    generator_batch: int
    discriminator_steps: int
    sample_rate: float
    noise_multiplier: float | None
    max_grad_norm: float
    adversarial_weight: float
    expected_batch: int = 1
    learning_rate: float = 2e-3
    components: int = 1024
    noise_dim: int = 32
    hidden: int = 128
    discriminator_hidden: int = 128
    #: Fake rows per discriminator batch (0: ``expected_batch``); with a privacy unit, the
    #: expected real rows of a batch of units (a DP estimate).
    fake_rows: int = 0


def train(*, plan: TrainingPlan, marginals: MeasuredMarginals, encoder: TabularEncoder, codes: np.ndarray,
          ledger: PrivacyLedger, device: torch.device, seed: int,
          progress: Callable[[dict], None] | None = None, checkpoint: Checkpointer | None = None,
          resume: dict | None = None, groups: np.ndarray | None = None) -> Generator:
    """Fit the generator to the noisy marginals and, adversarially, to the DP discriminator.

    ``seed`` drives only what no privacy rests on (initial weights, the generator's own
    noise); batches and gradient noise come from ``ledger.noise``. With ``checkpoint``, the
    whole training state (ledger included) is saved every ``checkpoint.every`` steps;
    ``resume`` is such a saved state to continue from: the batch sampler and the noise
    are drawn afresh, never replayed. ``groups``: each real row's unit (0..U-1) when the
    unit of privacy is a person; the discriminator then samples and clips units.
    """
    torch.manual_seed(seed)
    sizes = [code.size for code in encoder.codes_]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    generator = Generator(components=plan.components, noise_dim=plan.noise_dim, hidden=plan.hidden,
                          output_dim=int(sum(sizes))).to(device)
    g_opt = torch.optim.Adam(generator.parameters(), lr=plan.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(g_opt, T_max=max(plan.generator_steps, 1))
    target = _MarginalTargets(marginals, encoder, device)
    segments = Segments(sizes, device)

    use_discriminator = plan.discriminator_steps > 0 and plan.noise_multiplier is not None
    if use_discriminator:
        discriminator = Discriminator(input_dim=int(sum(sizes)), hidden=plan.discriminator_hidden).to(device)
        # Real rows as indices into the concatenated one-hot layout; batches are formed by
        # tensor indexing (a per-row DataLoader costs 30x here).
        if hasattr(codes, "real_units"):  # codes an engine keeps: every batch drawn in one pass over them
            real = codes.real_units(offsets=offsets, device=device, noise=ledger.noise, rate=plan.sample_rate,
                                    steps=plan.discriminator_steps,
                                    progress=None if progress is None else _passes(progress))
        else:
            real = _RealUnits(codes + offsets, groups, device)
        fakes = plan.fake_rows or plan.expected_batch
        clipping = ("exact per-sample (book-keeping)" if groups is None else
                    "exact per-unit: the sum of a unit's per-row gradients clipped as one (book-keeping)")
        d_opt = make_dp_optimizer(
            torch.optim.Adam(discriminator.parameters(), lr=plan.learning_rate, betas=(0.5, 0.9)),
            ledger=ledger, step="discriminator", noise_multiplier=plan.noise_multiplier,
            max_grad_norm=plan.max_grad_norm, sample_rate=plan.sample_rate,
            expected_batch_size=plan.expected_batch + fakes, clipped_before=True,
            parameters={"batch_size_expected": plan.expected_batch, "clipping": clipping,
                        "sampled": "rows" if groups is None else "units (all their kept rows)"},
        )
        sampler = ledger.noise
        d_every = plan.generator_steps / plan.discriminator_steps
    d_done, d_loss, start = 0, float("nan"), 0
    if resume is not None:
        generator.load_state_dict(resume["generator"])
        g_opt.load_state_dict(resume["g_opt"])
        schedule.load_state_dict(resume["schedule"])
        if use_discriminator:
            discriminator.load_state_dict(resume["discriminator"])
            d_opt.original_optimizer.load_state_dict(resume["d_opt"])
        torch.set_rng_state(resume["rng"])
        if device.type == "cuda" and resume.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(resume["cuda_rng"], device)
        start, d_done = int(resume["step"]), int(resume["d_done"])

    def save(step: int) -> None:
        checkpoint.save_training({
            "step": step, "d_done": d_done, "generator": generator.state_dict(), "g_opt": g_opt.state_dict(),
            "schedule": schedule.state_dict(), "rng": torch.get_rng_state(),
            **({"cuda_rng": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}),
            "ledger": json.dumps(ledger.state_dict()),
            **({"discriminator": discriminator.state_dict(), "d_opt": d_opt.original_optimizer.state_dict()}
               if use_discriminator else {}),
        })

    for step in range(start, plan.generator_steps):
        if checkpoint is not None and step > start and step % checkpoint.every == 0:
            save(step)
        # Discriminator steps, spread evenly over generator steps; exactly as many as planned.
        while use_discriminator and d_done < plan.discriminator_steps and d_done <= step / d_every:
            d_loss = _discriminator_step(discriminator, d_opt, generator, real, segments, plan, sampler, device)
            d_done += 1
        logits = generator(plan.generator_batch)
        loss = target.loss(segments.softmax(logits))
        adv = torch.zeros((), device=device)
        if use_discriminator and plan.adversarial_weight > 0:
            adv = F.softplus(-discriminator(segments.gumbel(logits))).mean()
            loss = loss + plan.adversarial_weight * adv
        g_opt.zero_grad(set_to_none=True)
        loss.backward(inputs=list(generator.parameters()))
        g_opt.step()
        schedule.step()
        if progress is not None and (step % 25 == 0 or step == plan.generator_steps - 1):
            progress({"step": step + 1, "total": plan.generator_steps, "loss": float(loss.detach()),
                      "epoch": d_done * plan.sample_rate, "d_loss": d_loss, "epsilon": ledger.epsilon_spent})
    while use_discriminator and d_done < plan.discriminator_steps:  # never fewer than planned
        _discriminator_step(discriminator, d_opt, generator, real, segments, plan, sampler, device)
        d_done += 1
    if checkpoint is not None and start < plan.generator_steps:
        # The finished state too: resuming a finished fit gives the same generator, never a second
        # one trained again from the last checkpoint with fresh noise under the same ledger.
        save(plan.generator_steps)
    generator.eval()
    return generator


def _passes(progress: Callable[[dict], None]) -> Callable[[dict], None]:
    return lambda info: progress(info) if "pass" in info else None


class _RealUnits:
    """The real rows as indices into the one-hot layout, grouped by unit for Poisson sampling.

    Without groups every row is its own unit. With groups, a unit's rows are contiguous,
    so a sample of units is a set of row ranges.
    """

    def __init__(self, rows: np.ndarray, groups: np.ndarray | None, device: torch.device) -> None:
        if groups is None:
            self.rows = torch.as_tensor(rows, dtype=torch.long, device=device)
            self.starts = self.sizes = None
            self.units = rows.shape[0]
        else:
            order = np.argsort(groups, kind="stable")
            sizes = np.bincount(groups, minlength=int(groups.max()) + 1 if len(groups) else 0)
            self.rows = torch.as_tensor(rows[order], dtype=torch.long, device=device)
            self.sizes = torch.as_tensor(sizes, dtype=torch.long, device=device)
            self.starts = torch.cumsum(self.sizes, 0) - self.sizes
            self.units = len(sizes)
        self.device = device

    def sample(self, sampler, rate: float) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        """(rows of a Poisson sample of units, each row's position among the sampled units, units sampled)."""
        chosen = torch.from_numpy(sampler.poisson_sample(self.units, rate)).to(self.device)
        if self.sizes is None:
            return self.rows[chosen], None, int(chosen.numel())
        sizes = self.sizes[chosen]
        group = torch.repeat_interleave(torch.arange(chosen.numel(), device=self.device), sizes)
        first = torch.repeat_interleave(self.starts[chosen], sizes)
        within = torch.arange(group.numel(), device=self.device) - torch.repeat_interleave(torch.cumsum(sizes, 0) - sizes,
                                                                                           sizes)
        return self.rows[first + within], group, int(chosen.numel())


def _discriminator_step(discriminator: Discriminator, optimizer, generator: Generator, real: _RealUnits,
                        segments: Segments, plan: TrainingPlan, sampler, device: torch.device) -> float:
    # Each unit in independently with probability q (the accountant's assumption), drawn
    # from the ledger's CSPRNG-keyed source. An empty batch still takes its noise-only step.
    batch, group, units = real.sample(sampler, plan.sample_rate)
    width = int(segments.valid.numel())
    real_rows = torch.zeros(batch.shape[0], width, device=device)
    if batch.shape[0]:
        real_rows.scatter_(1, batch, 1.0)
    fakes = plan.fake_rows or plan.expected_batch
    with torch.no_grad():
        fake_rows = segments.gumbel(generator(fakes))
    rows = torch.cat([real_rows, fake_rows])
    labels = torch.cat([torch.ones(real_rows.shape[0], device=device), torch.zeros(fakes, device=device)])
    groups = None
    if group is not None:  # each fake row is an example of its own; no real unit's clip depends on them
        groups = torch.cat([group, units + torch.arange(fakes, device=device)])
    optimizer.zero_grad(set_to_none=True)
    losses, _ = discriminator.clipped_backward(
        rows, lambda logits: F.binary_cross_entropy_with_logits(logits, labels, reduction="none"),
        max_grad_norm=plan.max_grad_norm, groups=groups)
    optimizer.step()
    return float(losses.mean())


#: Weight of each stratified target-pair table in the generator's loss (a pair's is 1).
STRATA_LOSS_WEIGHT = 1.0


class _MarginalTargets:
    """Hellinger distance between generated and noisy marginals, 1-, 2- and 3-way.

    All marginals are read off a few tensors: the batch mean of the per-column level
    probabilities (1-way), the Gram matrix of their coarse aggregates (2-way; each
    measured cell is one gathered entry), and for the measured triples one batched
    outer product of their 3-way group probabilities. A handful of kernels per step,
    whatever the number of pairs.
    """

    def __init__(self, marginals: MeasuredMarginals, encoder: TabularEncoder, device: torch.device) -> None:
        codes = encoder.codes_
        fine_offsets = np.concatenate([[0], np.cumsum([c.size for c in codes])[:-1]]).astype(int)
        coarse_offsets = np.concatenate([[0], np.cumsum([c.coarse_size for c in codes])[:-1]]).astype(int)
        aggregate = np.zeros((sum(c.size for c in codes), sum(c.coarse_size for c in codes)), dtype=np.float32)
        for code, fo, co in zip(codes, fine_offsets, coarse_offsets):
            aggregate[fo + np.arange(code.size), co + np.asarray(code.coarse)] = 1.0
        one_target = np.concatenate([_shares(code.counts) for code in codes])
        rows, cols, two_target, two_weight = [], [], [], []
        for i, j, target, weight in marginals.two_way:
            ci, cj = codes[i].coarse_size, codes[j].coarse_size
            rows.append(coarse_offsets[i] + np.repeat(np.arange(ci), cj))
            cols.append(coarse_offsets[j] + np.tile(np.arange(cj), ci))
            two_target.append(_shares(target))
            two_weight.append(np.full(ci * cj, weight))
        def tensor(a, dtype=torch.float32):
            return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)

        self.aggregate = tensor(aggregate)
        self.one_target = tensor(one_target)
        self.has_pairs = bool(rows)
        if self.has_pairs:
            self.rows = tensor(np.concatenate(rows), torch.long)
            self.cols = tensor(np.concatenate(cols), torch.long)
            self.two_target = tensor(np.concatenate(two_target))
            self.two_weight = tensor(np.concatenate(two_weight))
        self.has_triples = bool(marginals.three_way)
        if self.has_triples:
            self._triples(marginals, codes, fine_offsets, tensor)
        stratified = marginals.stratified
        self.has_strata = bool(stratified and stratified[3])
        if self.has_strata:
            column, target, strata, tables = stratified
            k, ct = max(strata) + 1, codes[target].coarse_size
            merge = np.zeros((codes[column].coarse_size, k), dtype=np.float32)
            merge[np.arange(len(strata)), strata] = 1.0
            self.strata_merge = tensor(merge)
            self.strata_span = (int(coarse_offsets[column]), int(coarse_offsets[column]) + codes[column].coarse_size)
            self.target_span = (int(coarse_offsets[target]), int(coarse_offsets[target]) + ct)
            # Cell (stratum s, x's group g, target's group t) is entry (s * ct + t, offset of x + g).
            srows, scols, starget = [], [], []
            for x, table in tables:
                cx = codes[x].coarse_size
                s_, g_, t_ = np.meshgrid(np.arange(k), np.arange(cx), np.arange(ct), indexing="ij")
                srows.append((s_ * ct + t_).ravel())
                scols.append((coarse_offsets[x] + g_).ravel())
                starget.append(_shares(table))
            self.strata_rows = tensor(np.concatenate(srows), torch.long)
            self.strata_cols = tensor(np.concatenate(scols), torch.long)
            self.strata_target = tensor(np.concatenate(starget))
            self.strata_weight = STRATA_LOSS_WEIGHT
        self.norm = 1e2 / (len(codes) + len(marginals.two_way) + len(marginals.three_way)
                           + (len(stratified[3]) if self.has_strata else 0))

    def _triples(self, marginals: MeasuredMarginals, codes, fine_offsets, tensor) -> None:
        """Fine levels -> 3-way groups, and per triple the group columns of its three
        columns (padded to the widest with a column of zeros) and the valid cells."""
        groups = marginals.groups
        sizes = [max(g) + 1 if g else 0 for g in groups]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
        aggregate = np.zeros((sum(c.size for c in codes), sum(sizes) + 1), dtype=np.float32)  # last: zeros
        for code, fo, go, g in zip(codes, fine_offsets, offsets, groups):
            if g:
                aggregate[fo + np.arange(code.size), go + np.asarray(g)[np.asarray(code.coarse)]] = 1.0
        width = max(sizes[c] for i, j, k, _, _ in marginals.three_way for c in (i, j, k))
        pad = sum(sizes)
        index = np.full((3, len(marginals.three_way), width), pad, dtype=np.int64)
        valid, targets, weights = [], [], []
        for t, (i, j, k, target, weight) in enumerate(marginals.three_way):
            for p, c in enumerate((i, j, k)):
                index[p, t, :sizes[c]] = offsets[c] + np.arange(sizes[c])
            mask = np.zeros((width, width, width), dtype=bool)
            mask[:sizes[i], :sizes[j], :sizes[k]] = True
            valid.append(mask.ravel())
            targets.append(_shares(target))
            weights.append(np.full(sizes[i] * sizes[j] * sizes[k], weight))
        self.aggregate3 = tensor(aggregate)
        self.index3 = tensor(index, torch.long)
        self.valid3 = tensor(np.concatenate(valid), torch.bool)
        self.three_target = tensor(np.concatenate(targets))
        self.three_weight = tensor(np.concatenate(weights))

    def loss(self, fine: torch.Tensor) -> torch.Tensor:
        """``fine``: per-column level probabilities of a generated batch, concatenated."""
        total = _hellinger(fine.mean(0), self.one_target, 1.0)
        if self.has_pairs or self.has_strata:
            coarse = fine @ self.aggregate
        if self.has_pairs:
            gram = coarse.t() @ coarse / coarse.shape[0]
            total = total + _hellinger(gram[self.rows, self.cols], self.two_target, self.two_weight)
        if self.has_strata:
            strata = coarse[:, self.strata_span[0]:self.strata_span[1]] @ self.strata_merge
            target = coarse[:, self.target_span[0]:self.target_span[1]]
            both = (strata[:, :, None] * target[:, None, :]).reshape(coarse.shape[0], -1)
            joint = both.t() @ coarse / coarse.shape[0]
            total = total + _hellinger(joint[self.strata_rows, self.strata_cols], self.strata_target, self.strata_weight)
        if self.has_triples:
            grouped = fine @ self.aggregate3
            a, b, c = (grouped[:, self.index3[p]] for p in range(3))  # rows x triples x width
            joint = torch.einsum("nta,ntb,ntc->tabc", a, b, c) / grouped.shape[0]
            total = total + _hellinger(joint.reshape(-1)[self.valid3], self.three_target, self.three_weight)
        return total * self.norm


def _shares(noisy: np.ndarray) -> np.ndarray:
    """Noisy counts (as shares) made a distribution: negative cells are empty."""
    clipped = np.maximum(np.asarray(noisy, dtype=float), 0.0)
    return clipped / max(clipped.sum(), 1e-12)


def _hellinger(generated: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | float) -> torch.Tensor:
    """Squared Hellinger distance per cell, weighted: unlike squared error, it still pulls
    hard on a cell the data says is empty (p = 0.01 where the target is 0 costs 0.01)."""
    return (weight * (generated.clamp_min(1e-12).sqrt() - target.sqrt()) ** 2).sum()
