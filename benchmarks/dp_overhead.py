"""Cost of privacy in one discriminator step: DP-SGD as synthdata does it vs a plain step.

Two discriminators: the image model's conditional conv discriminator (``--model conv``, see
the end of this docstring) and the tabular GAN's (``--model table``, the default):

Times, side by side and interleaved (so a busy machine slows every variant alike), one
step of the tabular GAN's discriminator done four ways on the same network and batch size:

    plain      uniform batch of B real rows + B fake rows, loss.backward(), Adam step
    synthdata  Poisson batch (expected B real, synthdata.privacy.poisson_sample) + B fake, Discriminator.clipped_backward
               (exact per-sample clipping, one backward pass), Opacus'
               DPOptimizerFastGradientClipping step with Gaussian noise (Adam inside)
    ghost      the same Poisson batch through Opacus' own ghost clipping
               (GradSampleModuleFastGradientClipping + DPLossFastGradientClipping, two backward passes)
    hooks      the same through Opacus' standard per-sample gradients (GradSampleModule + DPOptimizer)

Each timed step includes forming the batch (index sampling, one-hot scatter, concatenation
with the fake rows); fake rows are drawn once, since generating them costs the same with
or without privacy. Prints median and 10th/90th percentile milliseconds per step and each
variant's ratio to the plain step. Target (issue): synthdata / plain <= 1.5.

    python benchmarks/dp_overhead.py
    python benchmarks/dp_overhead.py --repeats 500 --threads 1

``--model conv`` times the image discriminator (synthdata.images.networks.ImageDiscriminator:
two stride-2 convolutions with GroupNorm, a projection label embedding) on B real + B fake
images of ``--image-size`` (default 28, ``--channels`` 1), six ways:

    plain      B real + B fake, loss.backward() + Adam
    synthdata  synthdata.images.releases.DPDiscriminator.step itself: a Poisson batch (expected B) of
               4,000 real images from the ledger's CSPRNG, each real image's exact gradient clipped
               (book-keeping: ImageDiscriminator.clipped_backward, one forward, one backward to the layer
               outputs, per-image weight gradients from activations), the fake half's exact gradient from
               one plain backward (post-processing: no clipping), CSPRNG Gaussian noise on the sum, Adam,
               one ledger step. The B fake images come from a stub generator (fixed images), as in `plain`.
    hooks      Opacus GradSampleModule (per-sample hooks, loss_reduction="sum") + DPOptimizer on all
               2B images (real and fake both clipped): the image model's step before the book-keeping one
    vmap       torch.func vmap(grad) per-sample gradients of all 2B images assigned to p.grad_sample +
               DPOptimizer (synthdata.images.networks.per_sample_gradients; the way before that)
    functorch  Opacus GradSampleModule(force_functorch=True) + DPOptimizer, all 2B images
    ghost      Opacus ghost clipping (GradSampleModuleFastGradientClipping + DPLossFastGradientClipping)

Target (issue): synthdata / plain <= 2 on CPU.

    python benchmarks/dp_overhead.py --model conv --threads 1 --batch 64 --repeats 30
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time
import warnings

import numpy as np
import torch
from opacus import GradSampleModule
from opacus.grad_sample import GradSampleModuleFastGradientClipping
from opacus.optimizers import DPOptimizer, DPOptimizerFastGradientClipping
from opacus.utils.fast_gradient_clipping_utils import DPLossFastGradientClipping
from torch import nn
from torch.nn import functional as F

from synthdata.images.networks import ImageDiscriminator, per_sample_gradients
from synthdata.images.releases import DPDiscriminator
from synthdata.privacy import IMAGE, DPSGDRequest, PrivacyLedger, poisson_sample
from synthdata.tabular.networks import Discriminator

TARGET_RATIO = 1.5
CONV_TARGET_RATIO = 2.0
#: Real images the conv step's Poisson batches are drawn from (as many as the MNIST benchmark's).
REAL_IMAGES = 4000


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-dim", type=int, default=250, help="width of an encoded row (default 250)")
    parser.add_argument("--columns", type=int, default=15, help="columns the width is split into (default 15)")
    parser.add_argument("--hidden", type=int, default=128, help="discriminator hidden width (default 128)")
    parser.add_argument("--batch", type=int, default=1024,
                        help="expected real rows per step; as many fake rows (default 1024)")
    parser.add_argument("--rows", type=int, default=32_561, help="rows of the real table (default: Adult's 32,561)")
    parser.add_argument("--repeats", type=int, default=200, help="timed steps per variant (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps per variant first (default 20)")
    parser.add_argument("--noise-multiplier", type=float, default=1.0)
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", choices=["table", "conv"], default="table",
                        help="the tabular GAN's discriminator, or the image model's conv discriminator")
    parser.add_argument("--image-size", type=int, default=28, help="conv: image side in pixels (default 28)")
    parser.add_argument("--channels", type=int, default=1, help="conv: 1 (grey) or 3 (colour)")
    return parser.parse_args()


class _Setup:
    """The shared table, fake rows and network every variant starts from."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.device = torch.device(args.device)
        rng = np.random.default_rng(args.seed)
        cuts = np.sort(rng.choice(np.arange(1, args.input_dim), args.columns - 1, replace=False))
        sizes = np.diff(np.concatenate([[0], cuts, [args.input_dim]]))
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        codes = np.stack([rng.integers(0, s, args.rows) for s in sizes], axis=1)
        self.width = args.input_dim
        self.real = torch.as_tensor(codes + offsets, dtype=torch.long, device=self.device)
        fake_codes = np.stack([rng.integers(0, s, args.batch) for s in sizes], axis=1) + offsets
        self.fake = torch.zeros(args.batch, self.width, device=self.device)
        self.fake.scatter_(1, torch.as_tensor(fake_codes, device=self.device), 1.0)
        torch.manual_seed(args.seed)
        self.network = Discriminator(input_dim=self.width, hidden=args.hidden).to(self.device)
        self.sample_rate = args.batch / args.rows
        self.sampler = torch.Generator().manual_seed(args.seed + 1)
        self.rows_rng = np.random.default_rng(args.seed + 1)

    def poisson_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        index = poisson_sample(self.real.shape[0], self.sample_rate, self.rows_rng)
        return self._rows(self.real[torch.from_numpy(index).to(self.device)])

    def uniform_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(self.real.shape[0], (self.args.batch,), generator=self.sampler)
        return self._rows(self.real[index.to(self.device)])

    def _rows(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        real_rows = torch.zeros(batch.shape[0], self.width, device=self.device)
        if batch.shape[0]:
            real_rows.scatter_(1, batch, 1.0)
        rows = torch.cat([real_rows, self.fake])
        labels = torch.cat([torch.ones(batch.shape[0], device=self.device),
                            torch.zeros(self.fake.shape[0], device=self.device)])
        return rows, labels

    def adam(self, module: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(module.parameters(), lr=2e-3, betas=(0.5, 0.9))

    def dp_kwargs(self) -> dict:
        return {"noise_multiplier": self.args.noise_multiplier, "max_grad_norm": self.args.max_grad_norm,
                "expected_batch_size": 2 * self.args.batch, "loss_reduction": "mean"}


def plain_step(setup: _Setup):
    network = copy.deepcopy(setup.network)
    optimizer = setup.adam(network)

    def step() -> None:
        rows, labels = setup.uniform_batch()
        optimizer.zero_grad(set_to_none=True)
        F.binary_cross_entropy_with_logits(network(rows), labels).backward()
        optimizer.step()

    return step


def synthdata_step(setup: _Setup):
    network = copy.deepcopy(setup.network)
    optimizer = DPOptimizerFastGradientClipping(setup.adam(network), **setup.dp_kwargs())
    clip = setup.args.max_grad_norm

    def step() -> None:
        rows, labels = setup.poisson_batch()
        optimizer.zero_grad(set_to_none=True)
        network.clipped_backward(
            rows, lambda logits: F.binary_cross_entropy_with_logits(logits, labels, reduction="none"),
            max_grad_norm=clip)
        optimizer.step()

    return step


def ghost_step(setup: _Setup):
    module = GradSampleModuleFastGradientClipping(copy.deepcopy(setup.network), loss_reduction="mean",
                                                  max_grad_norm=setup.args.max_grad_norm,
                                                  use_ghost_clipping=True)
    optimizer = DPOptimizerFastGradientClipping(setup.adam(module), **setup.dp_kwargs())
    criterion = DPLossFastGradientClipping(module, optimizer, nn.BCEWithLogitsLoss(reduction="mean"), "mean")

    def step() -> None:
        rows, labels = setup.poisson_batch()
        optimizer.zero_grad(set_to_none=True)
        criterion(module(rows), labels).backward()
        optimizer.step()

    return step


def hooks_step(setup: _Setup):
    module = GradSampleModule(copy.deepcopy(setup.network), loss_reduction="mean")
    optimizer = DPOptimizer(setup.adam(module), **setup.dp_kwargs())

    def step() -> None:
        rows, labels = setup.poisson_batch()
        optimizer.zero_grad(set_to_none=True)
        F.binary_cross_entropy_with_logits(module(rows), labels).backward()
        optimizer.step()

    return step


VARIANTS = {"plain": plain_step, "synthdata": synthdata_step, "ghost": ghost_step, "hooks": hooks_step}
LABELS = {
    "plain": "non-private: loss.backward() + Adam",
    "synthdata": "DP: clipped_backward + DPOptimizerFastGradientClipping",
    "ghost": "DP: Opacus ghost clipping (GradSampleModuleFastGradientClipping)",
    "hooks": "DP: Opacus per-sample hooks (GradSampleModule + DPOptimizer)",
}


class _ConvSetup:
    """B real + B fake images, labels, and the image model's discriminator."""

    def __init__(self, args: argparse.Namespace) -> None:
        torch.manual_seed(args.seed)
        self.device = torch.device(args.device)
        batch, side, channels = args.batch, args.image_size, args.channels
        self.args = args
        self.images = torch.rand(2 * batch, channels, side, side, device=self.device)
        self.labels = torch.randint(10, (2 * batch,), device=self.device)
        self.targets = torch.cat([torch.ones(batch), torch.zeros(batch)]).to(self.device)
        self.network = ImageDiscriminator(classes=10, channels=channels).to(self.device)
        self.dp = {"noise_multiplier": args.noise_multiplier, "max_grad_norm": args.max_grad_norm,
                   "expected_batch_size": 2 * batch}

    def adam(self, module: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(module.parameters(), lr=2e-3, betas=(0.5, 0.9))


def conv_plain(setup: _ConvSetup):
    network = copy.deepcopy(setup.network)
    optimizer = setup.adam(network)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.binary_cross_entropy_with_logits(network(setup.images, setup.labels), setup.targets).backward()
        optimizer.step()

    return step


def conv_hooks(setup: _ConvSetup, *, functorch: bool = False):
    module = GradSampleModule(copy.deepcopy(setup.network), batch_first=True, loss_reduction="sum",
                              force_functorch=functorch)
    optimizer = DPOptimizer(setup.adam(module), **setup.dp, loss_reduction="sum")

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.binary_cross_entropy_with_logits(module(setup.images, setup.labels), setup.targets,
                                           reduction="sum").backward()
        optimizer.step()

    return step


class _FixedGenerator:
    """Stands in for the generator in DPDiscriminator.step: returns the setup's B fake images."""

    noise_dim = 1

    def __init__(self, fake: torch.Tensor) -> None:
        self.fake = fake

    def __call__(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.fake


def conv_synthdata(setup: _ConvSetup):
    """The product's step (DPDiscriminator.step), on a ledger planned for every timed step."""
    args = setup.args
    steps = args.warmup + args.repeats + 1
    real = torch.rand(REAL_IMAGES, args.channels, args.image_size, args.image_size, device=setup.device)
    real_labels = torch.randint(10, (REAL_IMAGES,), device=setup.device)
    rate = args.batch / REAL_IMAGES
    ledger = PrivacyLedger(epsilon=10.0, delta=1e-5, unit=IMAGE)
    ledger.plan(gaussians={}, dpsgd=DPSGDRequest(sample_rate=rate, steps=steps, share=1.0))
    discriminator = DPDiscriminator(classes=10, channels=args.channels, real=real, real_labels=real_labels,
                                    sample_rate=rate, expected=args.batch, steps=steps,
                                    noise_multiplier=ledger.plan_.noise_multiplier,
                                    max_grad_norm=args.max_grad_norm, ledger=ledger, device=setup.device)
    discriminator.module.load_state_dict(setup.network.state_dict())
    generator = _FixedGenerator(setup.images[args.batch:])

    def step() -> None:
        discriminator.step(generator)

    return step


def conv_vmap(setup: _ConvSetup):
    network = copy.deepcopy(setup.network)
    optimizer = DPOptimizer(setup.adam(network), **setup.dp)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        grads, _ = per_sample_gradients(network, setup.images, setup.labels, setup.targets)
        for name, p in network.named_parameters():
            p.grad_sample = grads[name]
        optimizer.step()

    return step


def conv_ghost(setup: _ConvSetup):
    module = GradSampleModuleFastGradientClipping(copy.deepcopy(setup.network), loss_reduction="mean",
                                                  max_grad_norm=setup.dp["max_grad_norm"], use_ghost_clipping=True)
    optimizer = DPOptimizerFastGradientClipping(setup.adam(module), **setup.dp)
    criterion = DPLossFastGradientClipping(module, optimizer, nn.BCEWithLogitsLoss(reduction="mean"), "mean")

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        criterion(module(setup.images, setup.labels), setup.targets).backward()
        optimizer.step()

    return step


CONV_VARIANTS = {"plain": conv_plain, "synthdata": conv_synthdata, "hooks": conv_hooks, "vmap": conv_vmap,
                 "functorch": lambda setup: conv_hooks(setup, functorch=True), "ghost": conv_ghost}


def _time(steps: dict, args: argparse.Namespace, sync) -> dict[str, list[float]]:
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    sync()
    times: dict[str, list[float]] = {name: [] for name in steps}
    order = list(steps)
    for repeat in range(args.repeats):
        for name in order[repeat % len(order):] + order[:repeat % len(order)]:  # rotate: no fixed position
            start = time.perf_counter()
            steps[name]()
            sync()
            times[name].append(time.perf_counter() - start)
    return times


def conv_main(args: argparse.Namespace) -> None:
    load_before = os.getloadavg()
    setup = _ConvSetup(args)
    sync = torch.cuda.synchronize if setup.device.type == "cuda" else (lambda: None)
    times = _time({name: make(setup) for name, make in CONV_VARIANTS.items()}, args, sync)
    print(f"Image discriminator step: {args.batch} real + {args.batch} fake {args.image_size}x{args.image_size}"
          f"x{args.channels} images; device {setup.device}, torch {torch.__version__}, {torch.get_num_threads()} "
          f"thread(s); {args.repeats} timed steps per variant after {args.warmup} warm-up, interleaved")
    print("load average " + " ".join(f"{x:.2f}" for x in load_before) + " before, "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()) + " after")
    plain = statistics.median(times["plain"])
    print(f"{'variant':<10} {'median ms':>10} {'p10 ms':>8} {'p90 ms':>8} {'x plain':>8}")
    for name, values in times.items():
        ms = np.array(values) * 1e3
        print(f"{name:<10} {np.median(ms):>10.2f} {np.percentile(ms, 10):>8.2f} {np.percentile(ms, 90):>8.2f} "
              f"{np.median(ms) / (plain * 1e3):>8.2f}")
    ratio = statistics.median(times["synthdata"]) / plain
    print(f"DP step (synthdata: real half clipped) / non-private step = {ratio:.2f} (target <= {CONV_TARGET_RATIO}): "
          f"{'met' if ratio <= CONV_TARGET_RATIO else 'MISSED'}; every image clipped (hooks): "
          f"{statistics.median(times['hooks']) / plain:.2f}")


def main() -> None:
    args = _parse()
    if args.model == "conv":
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        warnings.filterwarnings("ignore", category=UserWarning, module="opacus")
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        if args.batch == 1024:  # the table default; images come in smaller batches
            args.batch = 64
        conv_main(args)
        return
    # Opacus' hooks warn that inputs need no gradient; the benchmark knows.
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    warnings.filterwarnings("ignore", category=UserWarning, module="opacus")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    setup = _Setup(args)
    sync = torch.cuda.synchronize if setup.device.type == "cuda" else (lambda: None)
    steps = {name: make(setup) for name, make in VARIANTS.items()}
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    sync()
    times: dict[str, list[float]] = {name: [] for name in steps}
    order = list(steps)
    for repeat in range(args.repeats):
        for name in order[repeat % len(order):] + order[:repeat % len(order)]:  # rotate: no fixed position
            start = time.perf_counter()
            steps[name]()
            sync()
            times[name].append(time.perf_counter() - start)

    print(f"Discriminator step: input width {args.input_dim}, hidden {args.hidden}, "
          f"{args.batch} real (expected) + {args.batch} fake rows, table of {args.rows:,} rows "
          f"(Poisson rate {setup.sample_rate:.4f})")
    print(f"device {setup.device}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"{platform.processor() or platform.machine()}; {args.repeats} timed steps per variant "
          f"after {args.warmup} warm-up, interleaved")
    print("load average " + " ".join(f"{x:.2f}" for x in load_before) + " before, "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()) + " after")
    print()
    plain = statistics.median(times["plain"])
    print(f"{'variant':<10} {'median ms':>10} {'p10 ms':>8} {'p90 ms':>8} {'x plain':>8}  what")
    for name, values in times.items():
        ms = np.array(values) * 1e3
        median = float(np.median(ms))
        print(f"{name:<10} {median:>10.3f} {np.percentile(ms, 10):>8.3f} {np.percentile(ms, 90):>8.3f} "
              f"{median / (plain * 1e3):>8.2f}  {LABELS[name]}")
    ratio = statistics.median(times["synthdata"]) / plain
    print()
    print(f"DP step / non-private step = {ratio:.2f} (target <= {TARGET_RATIO}): "
          f"{'met' if ratio <= TARGET_RATIO else 'MISSED'}")
    for name in ("ghost", "hooks"):
        print(f"Opacus {name} step / synthdata DP step = "
              f"{statistics.median(times[name]) / statistics.median(times['synthdata']):.2f} (above 1: synthdata faster)")


if __name__ == "__main__":
    main()
