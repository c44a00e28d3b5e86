"""Every synthesiser follows scikit-learn's estimator conventions.

Keyword-only parameters stored unchanged, ``get_params(deep=...)`` / ``set_params``,
``sklearn.base.clone``, a ``repr`` of the non-default parameters, learned state ending in
``_``, and ``sample(n)`` that draws new rows on every call unless a seed is given.
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from synthdata.errors import ModelError
from synthdata.models import MODELS, create_model, model_class

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_is_a_scikit_learn_style_estimator(name):
    cls = model_class(name)
    parameters = inspect.signature(cls.__init__).parameters
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for n, p in parameters.items() if n != "self")
    model = create_model(name, epsilon=2.0, seed=3)
    params = model.get_params(deep=True)
    assert params == model.get_params(deep=False) and params["epsilon"] == 2.0 and params["seed"] == 3
    copy = clone(model)
    assert type(copy) is cls and copy.get_params() == params and copy is not model
    assert model.set_params(epsilon=5.0) is model and model.epsilon == 5.0
    with pytest.raises(ValueError, match="no parameter"):
        model.set_params(epsilonn=1.0)
    assert repr(model).startswith(f"{cls.__name__}(") and "epsilon=5.0" in repr(model)
    assert not [k for k in vars(model) if k.endswith("_")]  # nothing learned before fit
    with pytest.raises(ModelError, match="not fitted"):
        model.sample(3)


def _frame(n=400):
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.integers(0, 5, n), "b": rng.choice(["x", "y"], n).astype(object)})


def test_sample_without_a_seed_draws_new_rows_each_call_and_with_one_repeats():
    model = create_model("tabular-gan", epsilon=5.0, generator_steps=10, epochs=0.5, device="cpu").fit(_frame())
    assert model.fitted_ and model.epsilon_spent_ <= 5.0
    first, second = model.sample(300), model.sample(300)
    assert not first.equals(second)
    pd.testing.assert_frame_equal(model.sample(300, seed=4), model.sample(300, seed=4))
    fitted_clone = clone(model)
    assert not hasattr(fitted_clone, "generator_")  # clone copies parameters, not learned state


def test_image_sample_without_a_seed_draws_new_images_each_call():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 255, (300, 8, 8), dtype=np.uint8)
    model = create_model("image-gan", epsilon=5.0, generator_steps=5, epochs=0.2, features=100,
                         device="cpu").fit(images)
    first, _ = model.sample(20)
    second, _ = model.sample(20)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(model.sample(20, seed=2)[0], model.sample(20, seed=2)[0])
