"""Rényi-DP arithmetic: the sampled Gaussian's RDP curve, composition, conversion.

Epsilons are computed with :func:`opacus.accountants.analysis.rdp.compute_rdp` and
:func:`~opacus.accountants.analysis.rdp.get_privacy_spent` over :data:`RDP_ORDERS`:
Opacus' default orders extended to order 1024. The default orders stop at 63, where the
RDP-to-(epsilon, delta) conversion alone costs about 0.1 at delta=1e-5, so a target of
epsilon=0.1 could not be certified at all; the ledger's accountant is given the same
orders, so ``ledger.accountant.get_epsilon(delta)`` agrees with the ledger.

:func:`fast_curve` is a vectorised twin of Opacus' formulas, used only to search noise
levels quickly while planning; every plan is verified with Opacus itself.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import numpy as np
from opacus.accountants import RDPAccountant
from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent
from scipy import special

__all__ = ["RDP_ORDERS", "new_accountant"]

#: RDP orders of every epsilon computed here: Opacus' defaults (1.1 .. 63) plus larger
#: orders, which small targets (epsilon <= 0.1) and small deltas need to be reachable.
RDP_ORDERS: tuple[float, ...] = tuple(RDPAccountant.DEFAULT_ALPHAS) + (
    64, 80, 96, 128, 160, 192, 256, 320, 384, 512, 1024,
)
_ORDERS = np.asarray(RDP_ORDERS, dtype=float)
_ORDERS_LIST = list(RDP_ORDERS)
# Dense orders used only to calibrate one Gaussian to a standalone epsilon: its RDP is
# closed-form at every order, so "standalone" means the best RDP bound, not the best
# bound over the ledger's orders (which has a floor that small shares would hit).
_DENSE_ORDERS = np.unique(np.concatenate([_ORDERS, np.geomspace(1.001, 1e7, 4000)]))

@lru_cache(maxsize=4096)
def _rdp_curve(q: float, z: float) -> np.ndarray:
    """RDP of one step of the sampled Gaussian at every order, exactly as Opacus computes it.

    Cached: a training run takes thousands of steps with one (q, z), and Opacus spends
    tens of milliseconds per curve.
    """
    curve = np.asarray(compute_rdp(q=q, noise_multiplier=z, steps=1, orders=_ORDERS_LIST), dtype=float)
    curve.setflags(write=False)
    return curve


def _compose(history: Iterable[tuple[float, float, int]], delta: float) -> float:
    """Epsilon of an accountant history, bit for bit what ``RDPAccountant`` reports."""
    terms = [_rdp_curve(float(q), float(z)) * n for z, q, n in history]
    if not terms:
        return 0.0
    with warnings.catch_warnings():
        # Opacus warns when the best order is the first or last one; the bound is valid
        # either way, and a warning is not something a data steward can act on.
        warnings.simplefilter("ignore")
        eps, _ = get_privacy_spent(orders=_ORDERS_LIST, rdp=sum(terms), delta=delta)
    return max(float(eps), 0.0)


def _merged(history: Iterable[Any], z: float, q: float, n: int) -> list[tuple[float, float, int]]:
    """The history after ``n`` more accountant steps: Opacus merges a repeat of the last entry."""
    out = [tuple(entry) for entry in history]
    if n <= 0:
        return out
    if out and out[-1][0] == z and out[-1][1] == q:
        out[-1] = (z, q, out[-1][2] + n)
    else:
        out.append((z, q, n))
    return out


@lru_cache(maxsize=64)
def _offsets(delta: float, dense: bool = False) -> np.ndarray:
    """Per order, what the RDP-to-(epsilon, delta) conversion adds (Balle et al. 2020, Thm 21)."""
    a = _DENSE_ORDERS if dense else _ORDERS
    out = -(math.log(delta) + np.log(a)) / (a - 1) + np.log((a - 1) / a)
    out.setflags(write=False)
    return out


def _fast_eps(rdp: np.ndarray, delta: float) -> float:
    with np.errstate(invalid="ignore"):
        eps = rdp + _offsets(delta)
    return float(np.nanmin(eps)) if not np.isnan(eps).all() else math.inf


# Planning searches over noise levels, and Opacus' scalar loops cost tens of ms per
# curve. These vectorised twins of its formulas (Mironov et al. 2019, Sec. 3.3) make the
# search cheap; the final plan is always verified with Opacus itself.
_INT = np.array([float(a).is_integer() for a in RDP_ORDERS])
_A_FRAC = _ORDERS[~_INT]


def _int_block(orders: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    i = np.arange(int(orders.max()) + 1, dtype=float)
    with np.errstate(divide="ignore"):
        log_binom = np.log(special.binom(orders[:, None], i[None, :]))
    log_binom[i[None, :] > orders[:, None]] = -np.inf
    return orders, i, log_binom


# Small and large integer orders apart: one padded block would be mostly padding.
_INT_BLOCKS = [_int_block(_ORDERS[_INT & (_ORDERS <= 64)]), _int_block(_ORDERS[_INT & (_ORDERS > 64)])]
# Opacus sums the series of a fractional order until a term is negligible, which takes
# from tens to tens of thousands of terms; rows are tried with growing numbers of terms.
_FRAC_TERMS = (64, 256, 1024, 4096, 16384)


@lru_cache(maxsize=None)
def _frac_block(terms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    i = np.arange(terms, dtype=float)
    binom = special.binom(_A_FRAC[:, None], i[None, :])
    with np.errstate(divide="ignore"):
        return i, np.log(np.abs(binom)), np.sign(binom)


def _frac_series(q: float, z: float, rows: np.ndarray, terms: int) -> tuple[np.ndarray, np.ndarray]:
    """log A_alpha of the fractional orders ``rows`` (Opacus' series, same stopping rule)."""
    i, log_binom, sign = _frac_block(terms)
    log_binom, sign = log_binom[rows], sign[rows]
    i = i[None, :]
    j = _A_FRAC[rows][:, None] - i
    log_q, log_1q = math.log(q), math.log1p(-q)
    z0 = z**2 * math.log(1 / q - 1) + 0.5
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        s0 = log_binom + i * log_q + j * log_1q + (i * i - i) / (2 * z**2) + special.log_ndtr((z0 - i) / z)
        s1 = log_binom + j * log_q + i * log_1q + (j * j - j) / (2 * z**2) + special.log_ndtr((j - z0) / z)
        small = np.maximum(s0, s1) < -30
        done = small.any(axis=1)
        keep = i <= np.argmax(small, axis=1)[:, None]  # up to the first negligible term
        parts = []
        for s in (s0, s1):
            s = np.where(keep, s, -np.inf)
            top = s.max(axis=1)
            total = (np.where(keep, sign, 0.0) * np.exp(s - top[:, None])).sum(axis=1)
            parts.append(np.where(np.isfinite(top), top + np.log(total), -np.inf))
        log_a = np.logaddexp(parts[0], parts[1])
    return log_a, done & np.isfinite(log_a)


def _fast_curve(q: float, z: float) -> np.ndarray:
    """RDP of one sampled-Gaussian step at every order: Opacus' formulas, vectorised."""
    if q == 1.0:
        return _ORDERS / (2 * z**2)
    out = np.empty_like(_ORDERS)
    log_q, log_1q = math.log(q), math.log1p(-q)
    ints = []
    for orders, i, log_binom in _INT_BLOCKS:
        with np.errstate(invalid="ignore", over="ignore"):
            s = log_binom + i * log_q + (orders[:, None] - i) * log_1q + (i * i - i) / (2 * z**2)
        s[np.isnan(s)] = -np.inf
        ints.append(special.logsumexp(s, axis=1) / (orders - 1))
    out[_INT] = np.concatenate(ints)

    frac = np.full(len(_A_FRAC), np.nan)
    rows = np.arange(len(_A_FRAC))
    for terms in _FRAC_TERMS:
        log_a, ok = _frac_series(q, z, rows, terms)
        frac[rows[ok]] = log_a[ok] / (_A_FRAC[rows[ok]] - 1)
        rows = rows[~ok]
        if not len(rows):
            break
    if len(rows):  # very slow series (sample rates near 1/2): Opacus' own loop
        frac[rows] = compute_rdp(q=q, noise_multiplier=z, steps=1, orders=[float(a) for a in _A_FRAC[rows]])
    out[~_INT] = frac
    return out


def _calibrate_gaussians(targets: np.ndarray, delta: float) -> np.ndarray:
    """Smallest noise multiplier per standalone epsilon: alpha/(2 z^2) + offset <= target."""
    offsets = _offsets(delta, dense=True)
    gap = np.asarray(targets, dtype=float)[:, None] - offsets[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.sqrt(_DENSE_ORDERS[None, :] / (2 * gap))
    z[~(gap > 0)] = np.inf
    return z.min(axis=1)



def new_accountant() -> RDPAccountant:
    """An Opacus RDP accountant that converts over :data:`RDP_ORDERS`."""
    accountant = RDPAccountant()
    # An instance attribute: get_epsilon() then uses the ledger's orders, and the class
    # (shared with any other Opacus user in the process) is left alone.
    accountant.DEFAULT_ALPHAS = list(_ORDERS_LIST)
    return accountant
