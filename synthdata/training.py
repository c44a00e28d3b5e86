"""Training the tabular GAN with differential privacy.

Two private views of the real rows reach the generator, and nothing else does:

1. **Marginals** (:func:`measure_marginals`): noisy scores pick the column pairs whose
   joint distribution the 1-way marginals explain worst, then those pairs' 2-way
   marginals are measured with the Gaussian mechanism (one release each, charged to the
   ledger). Training the generator to match them is post-processing (as in GEM, Liu et
   al. 2021, and RAP, Aydore et al. 2021).
2. **The discriminator** (:func:`train`), trained with DP-SGD: Poisson-sampled real
   batches, exact per-sample clipping, Gaussian noise from Opacus' DP optimizer, every
   step counted by the ledger through the optimizer's step hook. The real and fake rows
   pass through it together, so no gradient escapes clipping.

The generator only ever sees the noisy marginals and the private discriminator.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from opacus.optimizers import DPOptimizerFastGradientClipping
from torch.nn import functional as F

from .checkpoint import Checkpointer
from .encoding import TabularEncoder
from .models.networks import Discriminator, Generator, Segments
from .privacy import PrivacyLedger, poisson_sample

__all__ = ["MeasuredMarginals", "TrainingPlan", "measure_marginals", "train"]


@dataclass(frozen=True)
class MeasuredMarginals:
    """2-way targets for the generator: (columns i, j, noisy shares per coarse cell, weight).

    Measured pairs weigh 1; unmeasured pairs carry the independence prior at
    :data:`PRIOR_WEIGHT`. The 1-way targets are the encoder's released counts.
    """

    two_way: list[tuple[int, int, np.ndarray, float]]

    def to_dict(self) -> dict:
        return {"two_way": [[i, j, t.tolist(), w] for i, j, t, w in self.two_way]}

    @classmethod
    def from_dict(cls, data: dict) -> MeasuredMarginals:
        return cls(two_way=[(i, j, np.asarray(t), float(w)) for i, j, t, w in data["two_way"]])


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
    learning_rate: float = 2e-3
    components: int = 1024
    noise_dim: int = 32
    hidden: int = 128
    discriminator_hidden: int = 128


def measure_marginals(codes: np.ndarray, encoder: TabularEncoder, *, ledger: PrivacyLedger,
                      select_multiplier: float, measure_multiplier: float, max_pairs: int,
                      rng: np.random.Generator) -> MeasuredMarginals:
    """Select the informative column pairs and measure their 2-way marginals (both charged)."""
    # The row count as released (a DP estimate): scales the independence prediction.
    rows = float(np.median([max(sum(code.counts), 1.0) for code in encoder.codes_]))
    coarse = np.stack([np.asarray(code.coarse)[codes[:, j]] for j, code in enumerate(encoder.codes_)], axis=1)
    coarse_sizes = [code.coarse_size for code in encoder.codes_]
    pairs = [(i, j) for i in range(len(coarse_sizes)) for j in range(i + 1, len(coarse_sizes))
             if coarse_sizes[i] > 1 and coarse_sizes[j] > 1]
    if not pairs:
        return MeasuredMarginals(two_way=[])

    # What 1-way marginals alone predict for each pair (independence), from released counts.
    shares = []
    for code in encoder.codes_:
        mass = np.zeros(code.coarse_size)
        np.add.at(mass, code.coarse, np.maximum(code.counts, 0))
        shares.append(mass / max(mass.sum(), 1e-9))
    tables = {(i, j): _pair_counts(coarse, i, j, coarse_sizes) for i, j in pairs}

    # Selection: every pair's L1 error under independence, released with Gaussian noise.
    # One row moves each score by at most 1, so the score vector has L2 sensitivity √pairs.
    sensitivity = math.sqrt(len(pairs))
    sigma_select = select_multiplier * sensitivity
    scores = np.array([np.abs(tables[p] - rows * np.outer(shares[p[0]], shares[p[1]]).ravel()).sum()
                       for p in pairs])
    noisy_scores = scores + rng.normal(0, sigma_select, len(pairs))
    ledger.gaussian("marginal selection", sensitivity=sensitivity, sigma=sigma_select,
                    mechanism="Gaussian noise on pair scores (report noisy top-k)",
                    parameters={"pairs_scored": len(pairs)})

    # Post-processing of the noisy scores: choose how many pairs to measure so the
    # expected dependence captured beats the noise that measuring more pairs adds.
    cells = np.array([coarse_sizes[i] * coarse_sizes[j] for i, j in pairs], dtype=float)
    best_k, best_gain, best_order = 0, 0.0, np.array([], dtype=int)
    for k in range(1, min(max_pairs, len(pairs)) + 1):
        noise_l1 = math.sqrt(2 / math.pi) * measure_multiplier * math.sqrt(k) * cells
        net = noisy_scores - noise_l1
        order = np.argsort(-net)[:k]
        gain = float(np.sum(np.maximum(net[order], 0)))
        if gain > best_gain:
            best_k, best_gain, best_order = k, gain, order
    if best_k == 0:
        return MeasuredMarginals(two_way=_independent(pairs, [], shares))

    chosen = [pairs[index] for index in best_order]
    sensitivity = math.sqrt(len(chosen))
    sigma = measure_multiplier * sensitivity
    two_way = []
    for i, j in chosen:
        noisy = tables[(i, j)] + rng.normal(0, sigma, tables[(i, j)].shape)
        two_way.append((i, j, noisy / rows, 1.0))
    ledger.gaussian("marginals", sensitivity=sensitivity, sigma=sigma,
                    mechanism="Gaussian mechanism on 2-way marginals",
                    parameters={"pairs": [[encoder.codes_[i].name, encoder.codes_[j].name] for i, j in chosen]})
    return MeasuredMarginals(two_way=two_way + _independent(pairs, chosen, shares))


#: Weight of the independence prior on unmeasured pairs, relative to a measured pair.
PRIOR_WEIGHT = 0.1


def _independent(pairs, chosen, shares) -> list:
    """Unmeasured pairs pull towards independence (the product of released 1-way shares).

    A neural generator left unconstrained on a pair invents dependence that is not in
    the data; the maximum-entropy default is independence. Post-processing: free.
    """
    measured = set(chosen)
    return [(i, j, np.outer(shares[i], shares[j]).ravel(), PRIOR_WEIGHT) for i, j in pairs
            if (i, j) not in measured]


def _pair_counts(coarse: np.ndarray, i: int, j: int, sizes: list[int]) -> np.ndarray:
    return np.bincount(coarse[:, i] * sizes[j] + coarse[:, j], minlength=sizes[i] * sizes[j]).astype(float)


def train(*, plan: TrainingPlan, marginals: MeasuredMarginals, encoder: TabularEncoder, codes: np.ndarray,
          ledger: PrivacyLedger, device: torch.device, seed: int,
          progress: Callable[[dict], None] | None = None, checkpoint: Checkpointer | None = None,
          resume: dict | None = None) -> Generator:
    """Fit the generator to the noisy marginals and, adversarially, to the DP discriminator.

    With ``checkpoint``, the whole training state (ledger included) is saved every
    ``checkpoint.every`` steps; ``resume`` is such a saved state to continue from.
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
        real = torch.as_tensor(codes + offsets, dtype=torch.long, device=device)
        d_opt = DPOptimizerFastGradientClipping(
            torch.optim.Adam(discriminator.parameters(), lr=plan.learning_rate, betas=(0.5, 0.9)),
            noise_multiplier=plan.noise_multiplier,
            max_grad_norm=plan.max_grad_norm,
            expected_batch_size=max(1, round(plan.sample_rate * len(codes))) * 2,
            loss_reduction="mean",
        )
        d_opt.attach_step_hook(ledger.dpsgd_hook(
            "discriminator",
            noise_multiplier=plan.noise_multiplier,
            sample_rate=plan.sample_rate,
            max_grad_norm=plan.max_grad_norm,
            parameters={"batch_size_expected": round(plan.sample_rate * len(codes)),
                        "clipping": "exact per-sample (book-keeping)"},
        ))
        sampler = np.random.default_rng([seed, 2])
        d_every = plan.generator_steps / plan.discriminator_steps
    d_done, d_loss, start = 0, float("nan"), 0
    if resume is not None:
        generator.load_state_dict(resume["generator"])
        g_opt.load_state_dict(resume["g_opt"])
        schedule.load_state_dict(resume["schedule"])
        if use_discriminator:
            discriminator.load_state_dict(resume["discriminator"])
            d_opt.original_optimizer.load_state_dict(resume["d_opt"])
            sampler.bit_generator.state = json.loads(resume["sampler"])
        torch.set_rng_state(resume["rng"])
        start, d_done = int(resume["step"]), int(resume["d_done"])

    def save(step: int) -> None:
        checkpoint.save_training({
            "step": step, "d_done": d_done, "generator": generator.state_dict(), "g_opt": g_opt.state_dict(),
            "schedule": schedule.state_dict(), "rng": torch.get_rng_state(),
            "ledger": json.dumps(ledger.state_dict()),
            **({"discriminator": discriminator.state_dict(), "d_opt": d_opt.original_optimizer.state_dict(),
                "sampler": json.dumps(sampler.bit_generator.state)} if use_discriminator else {}),
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
    generator.eval()
    return generator


def _discriminator_step(discriminator: Discriminator, optimizer, generator: Generator, real: torch.Tensor,
                        segments: Segments, plan: TrainingPlan, sampler: np.random.Generator,
                        device: torch.device) -> float:
    # An empty batch still takes its (noise-only) step.
    batch = real[torch.from_numpy(poisson_sample(real.shape[0], plan.sample_rate, sampler)).to(device)]
    width = int(segments.valid.numel())
    real_rows = torch.zeros(batch.shape[0], width, device=device)
    if batch.shape[0]:
        real_rows.scatter_(1, batch, 1.0)
    fakes = max(1, round(plan.sample_rate * real.shape[0]))
    with torch.no_grad():
        fake_rows = segments.gumbel(generator(fakes))
    rows = torch.cat([real_rows, fake_rows])
    labels = torch.cat([torch.ones(real_rows.shape[0], device=device), torch.zeros(fakes, device=device)])
    optimizer.zero_grad(set_to_none=True)
    losses, _ = discriminator.clipped_backward(
        rows, lambda logits: F.binary_cross_entropy_with_logits(logits, labels, reduction="none"),
        max_grad_norm=plan.max_grad_norm)
    optimizer.step()
    return float(losses.mean())


class _MarginalTargets:
    """Hellinger distance between generated and noisy marginals, 1-way and 2-way.

    All marginals are read off two tensors: the batch mean of the per-column level
    probabilities (1-way), and the Gram matrix of their coarse aggregates (2-way); each
    measured cell is one gathered entry. A handful of kernels per step, whatever the
    number of pairs.
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
        tensor = lambda a, dtype=torch.float32: torch.as_tensor(np.asarray(a), dtype=dtype, device=device)
        self.aggregate = tensor(aggregate)
        self.one_target = tensor(one_target)
        self.has_pairs = bool(rows)
        if self.has_pairs:
            self.rows = tensor(np.concatenate(rows), torch.long)
            self.cols = tensor(np.concatenate(cols), torch.long)
            self.two_target = tensor(np.concatenate(two_target))
            self.two_weight = tensor(np.concatenate(two_weight))
        self.norm = 1e2 / (len(codes) + len(marginals.two_way))

    def loss(self, fine: torch.Tensor) -> torch.Tensor:
        """``fine``: per-column level probabilities of a generated batch, concatenated."""
        total = _hellinger(fine.mean(0), self.one_target, 1.0)
        if self.has_pairs:
            coarse = fine @ self.aggregate
            gram = coarse.t() @ coarse / coarse.shape[0]
            total = total + _hellinger(gram[self.rows, self.cols], self.two_target, self.two_weight)
        return total * self.norm


def _shares(noisy: np.ndarray) -> np.ndarray:
    """Noisy counts (as shares) made a distribution: negative cells are empty."""
    clipped = np.maximum(np.asarray(noisy, dtype=float), 0.0)
    return clipped / max(clipped.sum(), 1e-12)


def _hellinger(generated: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | float) -> torch.Tensor:
    """Squared Hellinger distance per cell, weighted: unlike squared error, it still pulls
    hard on a cell the data says is empty (p = 0.01 where the target is 0 costs 0.01)."""
    return (weight * (generated.clamp_min(1e-12).sqrt() - target.sqrt()) ** 2).sum()
