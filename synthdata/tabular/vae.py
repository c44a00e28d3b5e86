"""TabularVAE: a differentially private variational autoencoder for tables (scikit-learn style).

    model = TabularVAE(epsilon=1.0, seed=0).fit(df)
    synthetic = model.sample(10_000)
    model.save("model_dir"); TabularVAE.load("model_dir")

A second generator family beside :class:`~synthdata.tabular.estimator.TabularGAN`, sharing
its private preprocessing: the DP row count, the private schema inference, and the DP
encoder's histograms (:meth:`TabularGAN._measure`), so both models see the columns through
the same released levels and write the same output. What differs is how the joint
distribution is learned:

* an **encoder** (one-hot levels -> mean and log-variance of a small Gaussian latent) and
  a **decoder** (latent -> logits of every column's levels) trained together with DP-SGD
  through Opacus: Poisson-sampled batches from the ledger's CSPRNG
  (:meth:`NoiseSource.poisson_sample`), per-sample gradients from Opacus'
  :class:`~opacus.GradSampleModule`, clipping and Gaussian noise by Opacus' DP optimizer
  (:func:`synthdata.privacy.dpsgd.make_dp_optimizer`), every step booked on the ledger and
  exactly the planned number of steps. With a privacy unit column the sampled, clipped
  example is a unit: the sum of its rows' gradients is clipped as one.
* the per-sample loss is the rows' reconstruction cross-entropy, column by column, plus
  ``kl_weight`` times the KL divergence of the posterior from the N(0, I) prior. Nothing
  in it mixes two rows (no batch normalisation), so per-sample clipping bounds one row.
* the decoder's output bias starts at the log of the DP 1-way histograms the encoder
  released (post-processing, free): the network starts from the right marginals and
  spends its noisy gradient steps on the dependence between columns.
* few noisy steps: a few hundred (planned from the DP count, ``epochs`` and
  ``batch_size``), so the learning rate is high (1e-2) and the KL weight rises from 0
  over the first half (``kl_warmup``). With the KL term at full weight from the first
  step, the posterior collapses onto the prior before the decoder has learned anything,
  and the decoder stays at the marginals (measured on Adult at epsilon 1: AUROC 0.63
  with learning rate 2e-3 and no warm-up, 0.88 with both, in the run that chose them;
  the defaults scored 0.873 in benchmarks/vae.py, benchmarks/README.md).
* after training, the decoder's output bias is fitted so that prior samples follow the
  released 1-way histograms again (:func:`calibrate`; post-processing): DP-SGD's noise
  moves the marginals away from what the preprocessing measured.

Sampling draws latents from the prior and decodes them into the same level codes the
GAN's sampler decodes, so ``sample``, ``sample_chunks``, ``sample_arrow_chunks``,
``write_csv``, save/load (JSON + tensors) and checkpoint/resume work as for the GAN.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..checkpoint import Checkpointer
from ..errors import PrivacyError
from ..privacy import PrivacyLedger, budget_split
from ..privacy.dpsgd import make_dp_optimizer
from .encoding import TabularEncoder
from .estimator import DEFAULT_BUDGET_SPLIT as GAN_BUDGET_SPLIT
from .estimator import TabularGAN
from .marginals import MeasuredMarginals
from .networks import Segments
from .training import TrainingPlan

__all__ = ["TabularDecoder", "TabularVAE", "VAENetwork"]

MODEL_FORMAT = "synthdata-tabular-vae/1"
#: Ledger line of the VAE's DP-SGD steps.
VAE_STEP = "vae"
#: Relative shares of epsilon (normalised to sum 1; RDP composition lets each part get
#: more than its slice of an additive split). The VAE reads the rows only through the
#: preprocessing histograms and DP-SGD: no marginals are measured, nothing is selected.
#: "schema" is spent only without a declared schema, "units" only with a privacy unit
#: column, "audit" by a release's public audit figures.
DEFAULT_BUDGET_SPLIT = {"schema": 0.05, "preprocessing": 0.25, "vae": 0.7, "audit": 0.0, "units": 0.05}
#: Log-variance of the posterior is kept in this range (exp(-8) to exp(4)).
_LOGVAR_RANGE = (-8.0, 4.0)


class TabularDecoder(nn.Module):
    """Latent code -> logits of every column's levels (concatenated, as the GAN's generator)."""

    def __init__(self, *, latent_dim: int, hidden: int, output_dim: int, layers: int = 2) -> None:
        super().__init__()
        self.latent_dim, self.hidden, self.output_dim, self.layers = latent_dim, hidden, output_dim, layers
        stack: list[nn.Module] = []
        width = latent_dim
        for _ in range(layers):
            stack += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        stack.append(nn.Linear(width, output_dim))
        self.net = nn.Sequential(*stack)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)

    def logits_by_column(self, batch: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Logits of ``batch`` rows decoded from prior draws, transposed (outputs x rows).

        The layout :meth:`~synthdata.tabular.networks.Segments.sample_by_column` reads, as
        :meth:`Generator.logits_by_column` gives it for the GAN.
        """
        device = self.net[0].weight.device
        z = torch.randn(batch, self.latent_dim, generator=generator, device="cpu").to(device)
        return self.net(z).t().contiguous()

    def config(self) -> dict[str, int]:
        return {"latent_dim": self.latent_dim, "hidden": self.hidden, "output_dim": self.output_dim,
                "layers": self.layers}


class VAENetwork(nn.Module):
    """Encoder and decoder together: the module DP-SGD trains (Linear layers and ReLUs only).

    ``forward(x, eps)`` takes one-hot rows and standard normal draws (the
    reparameterisation), and returns each row's decoder logits, posterior mean and
    log-variance; nothing mixes rows, so Opacus' per-sample gradients are exact.
    """

    def __init__(self, *, input_dim: int, latent_dim: int, hidden: int, layers: int = 2) -> None:
        super().__init__()
        stack: list[nn.Module] = []
        width = input_dim
        for _ in range(layers - 1):
            stack += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        stack.append(nn.Linear(width, 2 * latent_dim))
        self.encoder = nn.Sequential(*stack)
        self.decoder = TabularDecoder(latent_dim=latent_dim, hidden=hidden, output_dim=input_dim, layers=layers)
        self.latent_dim = latent_dim

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        logvar = logvar.clamp(*_LOGVAR_RANGE)
        z = mu + torch.exp(0.5 * logvar) * eps
        return self.decoder(z), mu, logvar


def per_row_loss(logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, levels: torch.Tensor,
                 segments: Segments, kl_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, reconstruction, KL) per row: cross-entropy summed over columns, plus the weighted KL."""
    log_p = F.log_softmax(segments.padded(logits), dim=2)  # rows x columns x levels
    reconstruction = -log_p.gather(2, levels[:, :, None]).squeeze(2).sum(1)
    kl = 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(1)
    return reconstruction + kl_weight * kl, reconstruction, kl


class TabularVAE(TabularGAN):
    """Differentially private variational autoencoder for mixed-type tables.

    The same private preprocessing, output, saved-model layout and checkpoints as
    :class:`TabularGAN`; the generator is a VAE's decoder trained with DP-SGD.

    Parameters (keyword-only, stored unchanged; all work happens in :meth:`fit`):
        epsilon: the privacy budget; never exceeded.
        delta: defaults to 1e-6 (fixed in advance); must be well below 1/n, judged on a DP count.
        epochs: passes of DP-SGD over the data (in expectation); with ``batch_size`` they
            fix the number of steps before any training, so the noise can be planned.
        batch_size: expected size of the Poisson-sampled batches.
        latent_dim: dimensions of the Gaussian latent.
        hidden: width of the encoder's and decoder's hidden layers.
        layers: hidden layers of the decoder (the encoder has one fewer).
        kl_weight: weight of the KL term (1 is the evidence lower bound).
        kl_warmup: share of the steps over which the KL weight rises linearly from 0 to
            ``kl_weight`` (a public schedule): with few noisy steps, a full KL term from the
            start collapses the posterior onto the prior and the decoder onto the marginals.
        calibration_steps: after training, iterations of fitting the decoder's output bias so
            that prior samples follow the released 1-way histograms (post-processing; 0: off).
        max_grad_norm: per-sample clipping norm.
        learning_rate: of Adam on the noisy gradients.
        seed: makes what no privacy rests on reproducible (initial weights, the
            reparameterisation draws, sampling); the privacy noise never depends on it.
        device: "auto" (CUDA when present), "cpu" or "cuda".
        budget_split: relative shares of epsilon for schema, preprocessing, vae, audit and
            units (see :data:`DEFAULT_BUDGET_SPLIT`).
        digits / max_levels / max_coarse: the DP encoder's grid and levels, as for the GAN.
        insecure_noise_seed: FOR TESTS ONLY: makes the privacy noise reproducible.
    """

    model_format = MODEL_FORMAT
    model_name = "tabular-vae"
    #: What TabularGAN's preprocessing plans besides DP-SGD: no generator steps, no pairs.
    generator_steps = 0
    max_pairs = 0
    adversarial_weight = 0.0

    def __init__(self, *, epsilon: float, delta: float | None = None, epochs: float = 10.0,
                 batch_size: int = 1024, latent_dim: int = 8, hidden: int = 128, layers: int = 2,
                 kl_weight: float = 1.0, kl_warmup: float = 0.5, calibration_steps: int = 20,
                 max_grad_norm: float = 1.0, learning_rate: float = 1e-2, seed: int | None = None, device: str = "auto",
                 budget_split: dict[str, float] | None = None, digits: int = 2, max_levels: int = 32,
                 max_coarse: int = 16,
                 insecure_noise_seed: int | None = None) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.epochs = epochs
        self.batch_size = batch_size
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.layers = layers
        self.kl_weight = kl_weight
        self.kl_warmup = kl_warmup
        self.calibration_steps = calibration_steps
        self.max_grad_norm = max_grad_norm
        self.learning_rate = learning_rate
        self.seed = seed
        self.device = device
        self.budget_split = budget_split
        self.digits = digits
        self.max_levels = max_levels
        self.max_coarse = max_coarse
        self.insecure_noise_seed = insecure_noise_seed

    # ------------------------------------------------------------------ the hooks TabularGAN.fit calls

    def _split(self, *, schema_declared: bool, unit_column: bool = False) -> dict[str, float]:
        """The budget in TabularGAN's terms: DP-SGD's share is the "discriminator" slot, no marginals."""
        split = budget_split(self.budget_split, DEFAULT_BUDGET_SPLIT, positive=("preprocessing", "vae"))
        if not schema_declared and split["schema"] <= 0:
            raise PrivacyError("budget_split gives the schema no share, but no schema was declared: declare one "
                               "(it is then public and free) or give 'schema' a share")
        if unit_column and split["units"] <= 0:
            raise PrivacyError("budget_split gives 'units' no share, but a privacy unit column needs its rows-per-unit "
                               "histogram")
        if self.epochs is None or not (isinstance(self.epochs, (int, float)) and self.epochs > 0):
            raise PrivacyError(f"epochs must be a number > 0 (DP-SGD's passes over the data), got {self.epochs!r}")
        # Every part the GAN's preprocessing knows (marginals, selection, ...) gets nothing, but these:
        return {**{part: 0.0 for part in GAN_BUDGET_SPLIT},
                "schema": 0.0 if schema_declared else split["schema"], "preprocessing": split["preprocessing"],
                "discriminator": split["vae"], "audit": split["audit"],
                "units": split["units"] if unit_column else 0.0}

    def _train_generator(self, *, plan: TrainingPlan, encoder: TabularEncoder, codes: np.ndarray,
                         ledger: PrivacyLedger, device: torch.device, seed: int,
                         progress: Callable[[dict], None] | None = None, checkpoint: Checkpointer | None = None,
                         resume: dict | None = None, groups: np.ndarray | None = None,
                         marginals: MeasuredMarginals | None = None, **_: Any) -> TabularDecoder:
        return train_vae(plan=plan, encoder=encoder, codes=codes, ledger=ledger, device=device, seed=seed,
                         latent_dim=self.latent_dim, hidden=self.hidden, layers=self.layers,
                         kl_weight=self.kl_weight, kl_warmup=self.kl_warmup,
                         calibration_steps=self.calibration_steps, progress=progress,
                         checkpoint=checkpoint, resume=resume, groups=groups)

    # ------------------------------------------------------------------ persistence

    def _network_config(self) -> tuple[str, dict[str, Any]]:
        return "decoder", self.generator_.config()

    def _restore_network(self, state: dict[str, Any], tensors: dict[str, Any]) -> torch.nn.Module:
        return TabularDecoder(**{k: int(v) for k, v in state["decoder"].items()})


# --------------------------------------------------------------------------- training


def train_vae(*, plan: TrainingPlan, encoder: TabularEncoder, codes: np.ndarray, ledger: PrivacyLedger,
              device: torch.device, seed: int, latent_dim: int, hidden: int, layers: int, kl_weight: float,
              kl_warmup: float = 0.0, calibration_steps: int = 0, progress: Callable[[dict], None] | None = None,
              checkpoint: Checkpointer | None = None, resume: dict | None = None,
              groups: np.ndarray | None = None) -> TabularDecoder:
    """Train encoder and decoder with DP-SGD for exactly ``plan.discriminator_steps`` steps; returns the decoder.

    ``seed`` drives only initial weights and the reparameterisation draws; batches come
    from ``ledger.noise`` (a CSPRNG) and the gradient noise from the DP optimizer, which
    books every step on ``ledger`` under :data:`VAE_STEP`. ``resume`` continues a saved
    state (the ledger inside it already holds the steps taken); ``groups`` gives each row's
    privacy unit, whose rows are then sampled and clipped together.
    """
    from opacus import GradSampleModule

    torch.manual_seed(seed)
    sizes = [code.size for code in encoder.codes_]
    segments = Segments(sizes, device)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    network = VAENetwork(input_dim=int(sum(sizes)), latent_dim=latent_dim, hidden=hidden, layers=layers)
    with torch.no_grad():  # start from the DP 1-way histograms: post-processing of the preprocessing release
        network.decoder.net[-1].bias.copy_(torch.as_tensor(_log_shares(encoder), dtype=torch.float32))
    network = network.to(device)
    steps = int(plan.discriminator_steps)
    if steps <= 0 or plan.noise_multiplier is None:
        raise PrivacyError("the VAE needs DP-SGD steps: give 'vae' a share of the budget and epochs > 0")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*full_backward_hook.*")
        module = GradSampleModule(network, loss_reduction="mean")
    optimizer = make_dp_optimizer(
        torch.optim.Adam(network.parameters(), lr=plan.learning_rate), ledger=ledger, step=VAE_STEP,
        noise_multiplier=plan.noise_multiplier, max_grad_norm=plan.max_grad_norm, sample_rate=plan.sample_rate,
        expected_batch_size=plan.expected_batch,
        parameters={"batch_size_expected": plan.expected_batch,
                    "clipping": "per-sample (Opacus GradSampleModule)" if groups is None else
                                "per-unit: the sum of a unit's per-row gradients clipped as one",
                    "sampled": "rows" if groups is None else "units (all their kept rows)",
                    "network": "VAE encoder and decoder", "kl_weight": kl_weight, "kl_warmup": kl_warmup})
    units = _Units(codes, groups, device)
    done = 0
    if resume is not None:
        network.load_state_dict(resume["network"])
        optimizer.original_optimizer.load_state_dict(resume["optimizer"])
        torch.set_rng_state(resume["rng"])
        if device.type == "cuda" and resume.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(resume["cuda_rng"], device)
        done = int(resume["step"])

    def save(step: int) -> None:
        checkpoint.save_training({
            "step": step, "network": network.state_dict(), "optimizer": optimizer.original_optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            **({"cuda_rng": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}),
            "ledger": json.dumps(ledger.state_dict()),
        })

    module.train()
    loss_value = float("nan")
    for step in range(done, steps):
        if checkpoint is not None and step > done and step % checkpoint.every == 0:
            save(step)
        rows, group, count = units.sample(ledger.noise, plan.sample_rate)
        optimizer.zero_grad(set_to_none=True)
        if rows.shape[0]:
            x = torch.zeros(rows.shape[0], int(sum(sizes)), device=device)
            x.scatter_(1, rows + torch.as_tensor(offsets, device=device), 1.0)
            eps = torch.randn(rows.shape[0], latent_dim, device=device)
            logits, mu, logvar = module(x, eps)
            beta = kl_weight * min(1.0, (step + 1) / (kl_warmup * steps)) if kl_warmup > 0 else kl_weight
            losses, _, _ = per_row_loss(logits, mu, logvar, rows, segments, beta)
            with warnings.catch_warnings():  # torch notes that the one-hot input needs no gradient
                warnings.filterwarnings("ignore", message="Full backward hook is firing")
                losses.mean().backward()
            loss_value = float(losses.detach().mean())
            if group is not None:  # a unit's rows clipped together: sum their per-row gradients first
                for p in network.parameters():
                    p.grad_sample = torch.zeros((count, *p.shape), device=device,
                                                dtype=p.grad_sample.dtype).index_add_(0, group, p.grad_sample)
        else:  # an empty Poisson batch still takes its (noise-only) step, as the accountant assumes
            for p in network.parameters():
                p.grad_sample = torch.zeros((0, *p.shape), device=device)
        optimizer.step()
        if progress is not None and (step % 10 == 0 or step == steps - 1):
            progress({"step": step + 1, "total": steps, "loss": loss_value, "epoch": (step + 1) * plan.sample_rate,
                      "epsilon": ledger.epsilon_spent})
    if checkpoint is not None and done < steps:
        save(steps)  # the finished state too: resuming a finished fit gives the same decoder, never a second one
    decoder = network.decoder
    decoder.eval()
    if calibration_steps:
        calibrate(decoder, encoder, segments, steps=calibration_steps, seed=seed)
    return decoder


#: Prior draws the calibration averages over (fixed, seeded: post-processing needs no privacy).
CALIBRATION_DRAWS = 20_000


def calibrate(decoder: TabularDecoder, encoder: TabularEncoder, segments: Segments, *, steps: int,
              seed: int) -> None:
    """Shift the decoder's output bias until prior samples follow the released 1-way histograms.

    Post-processing of two DP outputs (the trained decoder and the preprocessing's
    histograms): no row is read. DP-SGD's noise moves every weight, the output bias
    included, so the decoded marginals drift from the histograms the preprocessing paid
    for; iterative proportional fitting of the bias (``log target - log current``, each
    column's levels at once) brings them back, as the GAN's generator is fitted to them.
    """
    target = torch.as_tensor(np.concatenate([_shares(code.counts) for code in encoder.codes_]), dtype=torch.float32)
    bias = decoder.net[-1].bias
    generator = torch.Generator().manual_seed(int(seed) + 7)
    with torch.no_grad():
        z = torch.randn(CALIBRATION_DRAWS, decoder.latent_dim, generator=generator).to(bias.device)
        hidden = decoder.net[:-1](z)
        weight = decoder.net[-1].weight
        target = target.to(bias.device)
        for _ in range(steps):
            current = segments.softmax(hidden @ weight.t() + bias).mean(0)
            bias.add_(torch.log(target + 1e-6) - torch.log(current + 1e-6))


def _shares(counts) -> np.ndarray:
    """Released noisy counts as a distribution: negative cells are empty."""
    counts = np.maximum(np.asarray(counts, dtype=float), 0.0)
    return counts / max(counts.sum(), 1e-12)


def _log_shares(encoder: TabularEncoder) -> np.ndarray:
    """Log of every column's released level shares (smoothed: a zero is a small logit, not -inf)."""
    return np.concatenate([np.log(_shares(code.counts) + 1e-3) for code in encoder.codes_])


class _Units:
    """Rows (as level codes) grouped by unit, Poisson-sampled unit by unit from the ledger's CSPRNG."""

    def __init__(self, codes: np.ndarray, groups: np.ndarray | None, device: torch.device) -> None:
        self.device = device
        if groups is None:
            self.rows = torch.as_tensor(codes, dtype=torch.long, device=device)
            self.count = codes.shape[0]
            self.starts = self.sizes = None
        else:
            order = np.argsort(groups, kind="stable")
            sizes = np.bincount(groups, minlength=int(groups.max()) + 1 if len(groups) else 0)
            self.rows = torch.as_tensor(codes[order], dtype=torch.long, device=device)
            self.sizes = sizes
            self.starts = np.cumsum(sizes) - sizes
            self.count = len(sizes)

    def sample(self, noise, rate: float) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        """(sampled rows, each row's position among the sampled units or None, units sampled)."""
        chosen = np.asarray(noise.poisson_sample(self.count, rate), dtype=np.int64)
        if self.sizes is None:
            return self.rows[torch.as_tensor(chosen, device=self.device)], None, int(chosen.size)
        sizes = self.sizes[chosen]
        index = np.concatenate([np.arange(s, s + k) for s, k in zip(self.starts[chosen], sizes)]) \
            if chosen.size else np.zeros(0, dtype=np.int64)
        group = np.repeat(np.arange(chosen.size), sizes)
        return (self.rows[torch.as_tensor(index, device=self.device)],
                torch.as_tensor(group, dtype=torch.long, device=self.device), int(chosen.size))
