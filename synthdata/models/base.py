"""The base of every synthesiser: scikit-learn estimator conventions and the saved-model skeleton.

A synthesiser takes keyword-only hyperparameters and stores them unchanged; ``fit``
does all the work and sets learned state whose names end in ``_``; ``sample(n)`` draws
new synthetic data. :class:`Synthesizer` gives every model the rest of the estimator
protocol — ``get_params(deep=True)``, ``set_params(**params)``, a ``repr`` that shows the
non-default parameters — so ``sklearn.base.clone`` works on any of them, and a
save/load skeleton: ``model.json`` (format, version, parameters, learned state, all
plain JSON) beside ``generator.pt`` (tensors only, loaded with ``weights_only=True``
and checked against its sha256).

Subclasses set :attr:`model_format` and implement :meth:`_saved_state` /
:meth:`_restore_state` for their learned state. Every subclass's ``fit`` runs under the
runtime's thread policy (:func:`synthdata.runtime.torch_threads`: one torch thread for these
small networks unless ``--threads`` / ``SYNTHDATA_THREADS`` / ``OMP_NUM_THREADS`` say
otherwise) and leaves the caller's torch thread count as it found it.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from .. import __version__
from ..errors import ModelError
from ..runtime import torch_threads
from .persistence import META_NAME, WEIGHTS_NAME, read_model, weights_sha256

__all__ = ["Synthesizer", "fresh_seed"]


def _under_thread_policy(fit: Callable[..., Any]) -> Callable[..., Any]:
    """``fit`` run with torch's threads set by the runtime policy, then restored."""
    @functools.wraps(fit)
    def run(self, *args: Any, **kwargs: Any) -> Any:
        with torch_threads():
            return fit(self, *args, **kwargs)

    run.under_thread_policy = True  # type: ignore[attr-defined]
    return run


def fresh_seed() -> int:
    """A seed nobody can guess (OS entropy), for randomness no caller fixed."""
    return secrets.randbits(63)


class Synthesizer:
    """Base class: estimator protocol, fitted check, saving and loading."""

    #: ``format`` written in model.json; loading refuses any other.
    model_format: ClassVar[str] = ""
    #: Parameters whose default changed, with the value files saved before they existed were fit
    #: with (a file without the parameter loads with this value, not the new default).
    older_defaults: ClassVar[dict[str, Any]] = {}
    #: Registry name (``synthdata.models.MODELS``), shown in reports.
    model_name: ClassVar[str] = ""
    #: What ``fit`` takes, for messages ("fit(data) first").
    fit_signature: ClassVar[str] = "fit(data)"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fit = cls.__dict__.get("fit")
        if fit is not None and not getattr(fit, "under_thread_policy", False):
            cls.fit = _under_thread_policy(fit)

    # ------------------------------------------------------------------ parameters

    @classmethod
    def _get_param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(name for name, p in signature.parameters.items()
                      if name != "self" and p.kind is inspect.Parameter.KEYWORD_ONLY)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters, as given (``deep`` is accepted for scikit-learn; no
        parameter here is itself an estimator)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> Synthesizer:
        """Set constructor parameters (e.g. before another ``fit``); unknown names are refused."""
        valid = set(self._get_param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}; "
                                 f"parameters are {', '.join(sorted(valid))}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {name: p.default for name, p in inspect.signature(type(self).__init__).parameters.items()}
        shown = []
        for name, value in self.get_params().items():
            default = defaults.get(name, inspect.Parameter.empty)
            try:
                same = default is not inspect.Parameter.empty and bool(value == default)
            except (TypeError, ValueError):
                same = False
            if not same:
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    # ------------------------------------------------------------------ fitted state

    def _check_fitted(self) -> None:
        if not getattr(self, "fitted_", False):
            raise ModelError(f"this {type(self).__name__} is not fitted yet; call {self.fit_signature} first")

    # ------------------------------------------------------------------ saving

    def _saved_params(self) -> dict[str, Any]:
        """Constructor parameters as plain JSON (tuples as lists).

        ``seed`` is left out (saved as null): a model file carries no seed of any kind.
        """
        params = json.loads(json.dumps(self.get_params(), default=lambda v: list(v)))
        if "seed" in params:
            params["seed"] = None
        return params

    def _saved_state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(learned state as JSON, tensors of the network) — implemented by each model."""
        raise NotImplementedError

    def _restore_state(self, state: dict[str, Any], tensors: dict[str, Any]) -> None:
        """Set the learned state from :meth:`_saved_state`'s output — implemented by each model."""
        raise NotImplementedError

    def save(self, path: str | os.PathLike) -> None:
        """Write the model into directory ``path``: JSON + tensors, no pickle."""
        import torch

        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state, tensors = self._saved_state()
        torch.save(tensors, path / WEIGHTS_NAME)
        meta = {
            "format": self.model_format,
            "model": self.model_name,
            "synthdata_version": __version__,
            "params": self._saved_params(),
            "state": state,
            "generator": {"sha256": weights_sha256(path)},
        }
        (path / META_NAME).write_text(json.dumps(meta, indent=1, allow_nan=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> Synthesizer:
        """Load a model saved by :meth:`save`; anything tampered with or foreign is refused."""
        meta, tensors = read_model(path, cls.model_format)
        try:
            params = meta["params"]
            if not isinstance(params, dict):
                raise TypeError("params is not an object")
            model = cls(**{**cls.older_defaults, **params})
            model._restore_state(meta["state"], tensors)
        except ModelError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as exc:
            raise ModelError(f"{path}: the saved model is incomplete or inconsistent ({exc})") from None
        model.fitted_ = True
        return model
