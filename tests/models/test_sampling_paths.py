"""The fast sampling path: the column-major level sampler and the Arrow decoder.

``write_csv`` takes a path that never builds pandas objects; these tests pin it to the
DataFrame path (same seed, same values, same text) and the sampler to the softmax it
stands for.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch

from synthdata.models import TabularGAN
from synthdata.tabular.networks import Generator, Segments
from synthdata.tabular.sampling import write_csv


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _every_dtype(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    visits = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 30, n), unit="D")
    smoker = pd.Series(rng.random(n) < 0.3, dtype=object)
    smoker[rng.random(n) < 0.2] = None
    kids = pd.Series(rng.integers(0, 4, n), dtype="Int64")
    kids[rng.random(n) < 0.2] = pd.NA
    return pd.DataFrame({
        "age": rng.integers(20, 60, n),
        "kids": kids,                                                        # nullable integers
        "weight": rng.normal(70, 5, n).astype("float32"),                    # float32
        "city": pd.Categorical(rng.choice(["Oslo", "Lima", "Pune"], n)),     # category dtype
        "plan": rng.choice(["basic", "gold, plus", 'say "hi"'], n).astype(object),  # text needing quotes
        "smoker": smoker,                                                    # booleans with gaps
        "active": rng.random(n) < 0.5,                                       # bool
        "visit": visits,                                                     # datetime64
        "signup": visits.strftime("%Y-%m-%d"),                               # dates as text
    })


@pytest.fixture(scope="module")
def model() -> TabularGAN:
    return TabularGAN(epsilon=10.0, seed=0, generator_steps=50, epochs=1, device="cpu").fit(_every_dtype())


@pytest.mark.parametrize("chunk_size", [700, 50_000])
def test_csv_holds_exactly_the_rows_sample_returns(model, tmp_path, chunk_size):
    path = write_csv(model, 3000, tmp_path / "out.csv", seed=7, chunk_size=chunk_size)
    written = pd.read_csv(path)
    frame = pd.concat(model.sample_chunks(3000, chunk_size=chunk_size, seed=7), ignore_index=True)
    expected = pd.read_csv(io.StringIO(frame.to_csv(index=False)))
    pd.testing.assert_frame_equal(written, expected)
    assert path.read_text().splitlines()[0] == ",".join(_every_dtype().columns)  # header as pandas writes it


def test_arrow_chunks_are_seeded_and_sized(model):
    first = [t.num_rows for t in model.sample_arrow_chunks(1001, chunk_size=400, seed=3)]
    assert first == [400, 400, 201]
    a = next(iter(model.sample_arrow_chunks(500, seed=3)))
    b = next(iter(model.sample_arrow_chunks(500, seed=3)))
    c = next(iter(model.sample_arrow_chunks(500, seed=4)))
    assert a.equals(b) and not a.equals(c)
    assert a.column_names == list(_every_dtype().columns)


def test_by_column_logits_equal_the_training_forward_pass():
    torch.manual_seed(0)
    net = Generator(components=16, noise_dim=4, hidden=8, output_dim=10)
    torch.nn.init.normal_(net.net[-1].weight)
    with torch.no_grad():
        rows = net(300, generator=torch.Generator().manual_seed(1))
        columns = net.logits_by_column(300, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(columns, rows.t())


def test_sampled_levels_follow_each_columns_softmax():
    sizes = [3, 1, 5]
    logits = torch.tensor([0.0, 1.0, -2.0, 7.0, 2.0, 2.0, -1.0, 0.5, -900.0])
    # A column whose logits are all far below another column's must not underflow to
    # nothing: the third column is shifted down by 1,000 and must sample the same.
    shifted = torch.cat([logits[:4], logits[4:] - 1000.0])
    n = 200_000
    for row in (logits, shifted):
        levels = Segments(sizes).sample_by_column(row[:, None].expand(-1, n).contiguous(),
                                                  generator=torch.Generator().manual_seed(2))
        assert levels.shape == (3, n)
        offset = 0
        for c, size in enumerate(sizes):
            expected = torch.softmax(logits[offset:offset + size].double(), 0).numpy()
            observed = np.bincount(levels[c].numpy(), minlength=size) / n
            assert len(observed) == size  # never an index past the column
            np.testing.assert_allclose(observed, expected, atol=4 * np.sqrt(0.25 / n))
            offset += size
        assert (levels[2] != 4).all()  # probability e^-900: never drawn
