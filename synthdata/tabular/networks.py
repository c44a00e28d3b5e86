"""Networks of the tabular GAN: a generator of per-column level probabilities, and a
discriminator whose per-sample gradients are clipped exactly in one backward pass.

The discriminator is a plain MLP (Linear + LeakyReLU, no normalisation layer, nothing
in-place). For a Linear layer with input ``a_i`` and output gradient ``g_i``, sample
``i``'s weight gradient is the outer product ``g_i a_iᵀ``, whose norm is
``‖g_i‖·‖a_i‖`` — so per-sample norms come from quantities the ordinary backward pass
already has, and the clipped sum is ``(c ⊙ g)ᵀ a``: one backward pass, no per-sample
gradient tensors ("book-keeping" clipping, Bu et al. 2023). Noise and accounting stay
with Opacus' DP optimizer and the :class:`~synthdata.privacy.PrivacyLedger`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["Generator", "Discriminator", "Segments"]


class Generator(nn.Module):
    """Latent code -> logits for every column's levels (concatenated).

    The latent code is a mixture component (a learned row of logits, as in RAP's relaxed
    synthetic dataset) refined by a small MLP on Gaussian noise. Components make sharp,
    nearly deterministic joints (education <-> education_num) quick to learn; the noise
    path adds variety within a component.
    """

    def __init__(self, *, components: int, noise_dim: int, hidden: int, output_dim: int) -> None:
        super().__init__()
        self.components = components
        self.noise_dim = noise_dim
        self.table = nn.Parameter(torch.randn(components, output_dim) * 0.1)
        self.net = nn.Sequential(nn.Linear(noise_dim, hidden), nn.ReLU(), nn.Linear(hidden, output_dim))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, batch: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        index, noise = self._latent(batch, generator)
        return self.table[index] + self.net(noise)

    def logits_by_column(self, batch: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``forward(batch).T`` (outputs x rows, contiguous), computed directly in that layout.

        The same random draws as :meth:`forward`; for sampling, where each column's
        levels then form a contiguous block of rows (see :meth:`Segments.sample_by_column`).
        """
        index, noise = self._latent(batch, generator)
        hidden = self.net[1](self.net[0](noise))
        out = self.table.t().index_select(1, index).add_(self.net[2].bias[:, None])
        return torch.addmm(out, self.net[2].weight, hidden.t())

    def _latent(self, batch: int, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.table.device
        index = torch.randint(self.components, (batch,), generator=generator, device="cpu").to(device)
        noise = torch.randn(batch, self.noise_dim, generator=generator, device="cpu").to(device)
        return index, noise


class Segments:
    """The concatenated per-column level layout, with vectorised per-column operations.

    Columns have different numbers of levels; gathering the logits into a padded
    (rows x columns x most levels) tensor turns 15 small softmaxes into one kernel.
    """

    def __init__(self, sizes: list[int], device: torch.device | str = "cpu") -> None:
        self.sizes = list(sizes)
        columns, most = len(sizes), max(sizes)
        index = torch.zeros(columns, most, dtype=torch.long)
        pad = torch.ones(columns, most, dtype=torch.bool)
        offset = 0
        for c, size in enumerate(sizes):
            index[c, :size] = torch.arange(offset, offset + size)
            pad[c, :size] = False
            offset += size
        self.shape = (columns, most)
        self.index = index.reshape(-1).to(device)
        self.pad = pad.to(device)
        self.valid = (~pad).reshape(-1).nonzero().squeeze(1).to(device)
        self.lower = [torch.ones(size, size, device=device).tril_() for size in sizes]  # CDF as a product
        self.last_level = (torch.tensor(sizes, device=device) - 1)[:, None]

    def padded(self, logits: torch.Tensor) -> torch.Tensor:
        x = logits[:, self.index].reshape(logits.shape[0], *self.shape)
        return x.masked_fill(self.pad, float("-inf"))

    def flat(self, padded: torch.Tensor) -> torch.Tensor:
        return padded.reshape(padded.shape[0], -1)[:, self.valid]

    def softmax(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-column probabilities, concatenated like the logits."""
        return self.flat(F.softmax(self.padded(logits), dim=2))

    def gumbel(self, logits: torch.Tensor, *, tau: float = 1.0) -> torch.Tensor:
        """One-hot samples per column with straight-through gradients, concatenated."""
        noise = -torch.log(-torch.log(torch.rand_like(logits).clamp_(1e-10, 1.0)))
        soft = F.softmax(self.padded((logits + noise) / tau), dim=2)
        hard = torch.zeros_like(soft).scatter_(2, soft.argmax(dim=2, keepdim=True), 1.0)
        return self.flat(hard - soft.detach() + soft)

    def sample_by_column(self, logits_t: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Level index per column (columns x rows), drawn from each column's softmax.

        ``logits_t`` is the logits transposed (outputs x rows, as
        :meth:`Generator.logits_by_column` makes them), so a column's levels are a
        contiguous block. Inverse CDF, one uniform per cell: the CDF of a column is a
        small lower-triangular matrix product (a GEMM, far faster than ``cumsum``), and
        the level is how many CDF values lie below the uniform: 5x faster on Adult than a
        softmax per column on rows x levels. Call it on a few thousand rows at a time,
        so the intermediates stay in cache.
        """
        columns, rows = len(self.sizes), logits_t.shape[1]
        device = logits_t.device
        uniform = torch.rand(columns, rows, generator=generator, device="cpu").to(device)
        out = torch.empty(columns, rows, dtype=torch.long, device=device)
        offset = 0
        for c, size in enumerate(self.sizes):
            part = logits_t[offset:offset + size]
            offset += size
            cdf = self.lower[c] @ (part - part.amax(0)).exp_()
            torch.sum(cdf < uniform[c] * cdf[-1], 0, out=out[c])
        # A uniform that rounds onto the last CDF value would count every level.
        return torch.minimum(out, self.last_level.to(device))


class Discriminator(nn.Module):
    """MLP critic: encoded row -> logit. Built from Linear layers only, for exact clipping."""

    def __init__(self, *, input_dim: int, hidden: int, slope: float = 0.2) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(input_dim, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, 1)])
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for k, layer in enumerate(self.layers):
            x = layer(x)
            if k < len(self.layers) - 1:
                x = F.leaky_relu(x, self.slope)
        return x.squeeze(-1)

    def clipped_backward(self, x: torch.Tensor, per_sample_loss, *, max_grad_norm: float,
                         groups: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Set ``p.grad`` to the sum of per-example gradients, each clipped to ``max_grad_norm``.

        An *example* is one row, or with ``groups`` (each row's group index, 0..G-1) one
        group of rows: a person's rows are clipped together, as one gradient — the sum
        of their per-row gradients — so one person moves the sum by at most
        ``max_grad_norm`` however many rows they hold. ``per_sample_loss(logits) -> losses``
        must treat rows independently (it does for a GAN's binary cross-entropy).
        Returns the per-row losses and the clip coefficient of each example.

        A Linear layer's weight gradient of a group is ``Σ_i g_i a_iᵀ`` over its rows, whose
        squared norm is ``Σ_{i,j} (g_i·g_j)(a_i·a_j)`` (plus ``Σ_{i,j} g_i·g_j`` for the
        bias): the within-group Gram matrices of the output gradients and inputs the
        backward pass already has, so no per-example gradient is ever materialised.
        """
        inputs, outputs = [], []
        h = x.detach()
        for k, layer in enumerate(self.layers):
            inputs.append(h)
            s = layer(h)
            outputs.append(s)
            h = F.leaky_relu(s, self.slope) if k < len(self.layers) - 1 else s
        losses = per_sample_loss(h.squeeze(-1))
        grads = torch.autograd.grad(losses.sum(), outputs)
        inputs = [a.detach() for a in inputs]
        # Fused norms and in-place scaling: rows x width temporaries cost more than the
        # arithmetic here (they made this pass 35% slower than a plain backward).
        squared = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype)
        for g, a in zip(grads, inputs):  # weight and bias: |g|^2 (|a|^2 + 1)
            squared.addcmul_(torch.linalg.vector_norm(g, dim=1).square_(),
                             torch.linalg.vector_norm(a, dim=1).square_().add_(1.0))
        if groups is None:
            coef = (max_grad_norm / (squared.sqrt_() + 1e-6)).clamp_(max=1.0)
            row_coef = coef
        else:
            count = int(groups.max()) + 1 if groups.numel() else 0
            per_group = torch.zeros(count, device=x.device, dtype=x.dtype).index_add_(0, groups, squared)
            first, second = _pairs_within(groups)
            for start in range(0, first.numel(), _PAIR_CHUNK):  # cross terms, each pair i < j counted twice
                i, j = first[start:start + _PAIR_CHUNK], second[start:start + _PAIR_CHUNK]
                cross = torch.zeros(i.numel(), device=x.device, dtype=x.dtype)
                for g, a in zip(grads, inputs):
                    cross.addcmul_((g[i] * g[j]).sum(1), (a[i] * a[j]).sum(1).add_(1.0))
                per_group.index_add_(0, groups[i], cross.mul_(2.0))
            coef = (max_grad_norm / (per_group.clamp_(min=0.0).sqrt_() + 1e-6)).clamp_(max=1.0)
            row_coef = coef[groups]
        for layer, g, a in zip(self.layers, grads, inputs):
            g = g.mul_(row_coef[:, None])  # autograd's fresh buffers, ours to scale
            layer.weight.grad = g.t() @ a
            layer.bias.grad = g.sum(0)
        return losses.detach(), coef


#: Pairs of rows handled at a time when summing a group's cross terms (bounds memory).
_PAIR_CHUNK = 16384


def _pairs_within(groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pair (i, j), i < j, of rows in the same group (groups need not be sorted)."""
    order = torch.argsort(groups, stable=True)
    sorted_groups = groups[order]
    sizes = torch.bincount(sorted_groups)
    if sizes.numel() == 0 or int(sizes.max()) < 2:
        empty = torch.zeros(0, dtype=torch.long, device=groups.device)
        return empty, empty
    starts = torch.cumsum(sizes, 0) - sizes
    firsts, seconds = [], []
    for size in range(2, int(sizes.max()) + 1):  # groups of the same size together: one index grid each
        of_size = torch.nonzero(sizes == size).squeeze(1)
        if of_size.numel() == 0:
            continue
        a, b = torch.triu_indices(size, size, offset=1, device=groups.device)
        base = starts[of_size][:, None]
        firsts.append((base + a[None, :]).reshape(-1))
        seconds.append((base + b[None, :]).reshape(-1))
    return order[torch.cat(firsts)], order[torch.cat(seconds)]
