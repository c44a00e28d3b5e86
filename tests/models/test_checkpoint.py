"""A fit killed with SIGKILL resumes from its checkpoint: training and the privacy count
continue, and the final epsilon equals an uninterrupted run's."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
import torch

from synthdata.errors import ModelError
from synthdata.models import TabularGAN

# 600 rows at epsilon 2 sit near the small-table line, and about a tenth of the normal
# scores' rows in cells too thin to release; those warnings are tested elsewhere.
pytestmark = [pytest.mark.filterwarnings("ignore:a DP count says the table holds"),
              pytest.mark.filterwarnings("ignore:column 'score'")]

# The test noise seed makes an uninterrupted fit draw the same DP row count as the killed
# one, so both plan the same steps and must land on exactly the same epsilon.
SETTINGS = dict(epsilon=2.0, delta=1e-5, seed=3, generator_steps=600, epochs=3, batch_size=64, device="cpu",
                insecure_noise_seed=11)


def _table(n=600, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    return pd.DataFrame({
        "age": age,
        "group": np.where(age > 45, "senior", rng.choice(["junior", "mid"], n)),
        "score": np.round(rng.normal(50, 10, n), 1),
    })


@pytest.fixture
def data_csv(tmp_path):
    path = tmp_path / "data.csv"
    _table().to_csv(path, index=False)
    return path


def test_resume_after_sigkill_continues_the_privacy_count(tmp_path, data_csv):
    checkpoints = tmp_path / "ckpt"
    script = textwrap.dedent(f"""
        import pandas as pd
        from synthdata.models import TabularGAN
        frame = pd.read_csv({str(data_csv)!r})
        TabularGAN(**{SETTINGS!r}).fit(frame, checkpoint_dir={str(checkpoints)!r}, checkpoint_every=10)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.time() + 120
        while not (checkpoints / "training.pt").exists():
            assert proc.poll() is None, "the fit ended before its first checkpoint"
            assert time.time() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
        time.sleep(0.3)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    frame = pd.read_csv(data_csv)
    resumed = TabularGAN(**SETTINGS).fit(frame, checkpoint_dir=checkpoints, resume=True)
    whole = TabularGAN(**SETTINGS).fit(frame)
    assert resumed.epsilon_spent_ == pytest.approx(whole.epsilon_spent_, rel=1e-12)
    assert resumed.epsilon_spent_ <= SETTINGS["epsilon"]
    steps = {s.step: s.parameters.get("steps") for s in resumed.ledger_.spends}
    assert steps["discriminator"] == resumed.training_.discriminator_steps
    # The private measurements were reused, not repeated: one line each.
    assert [s.step for s in resumed.ledger_.spends].count("preprocessing") == 1
    assert len(resumed.sample(50)) == 50


def test_resume_refuses_other_data(tmp_path):
    checkpoints = tmp_path / "ckpt"
    settings = {**SETTINGS, "generator_steps": 35}
    first = TabularGAN(**settings).fit(_table(), checkpoint_dir=checkpoints, checkpoint_every=10)
    with pytest.raises(ModelError, match="other data"):
        TabularGAN(**settings).fit(_table(seed=1), checkpoint_dir=checkpoints, resume=True)
    with pytest.raises(ModelError, match="other settings"):
        TabularGAN(**{**settings, "epsilon": 3.0}).fit(_table(), checkpoint_dir=checkpoints, resume=True)
    with pytest.raises(ModelError, match="already holds a checkpoint"):
        TabularGAN(**settings).fit(_table(), checkpoint_dir=checkpoints)
    # A finished fit resumes to the same generator: its last steps are not trained again with
    # fresh noise (that would be a second model under one ledger's spend).
    again = TabularGAN(**settings).fit(_table(), checkpoint_dir=checkpoints, resume=True)
    assert again.epsilon_spent_ == pytest.approx(first.epsilon_spent_, rel=1e-12)
    for key, value in first.generator_.state_dict().items():
        assert torch.equal(value, again.generator_.state_dict()[key]), key


def test_resume_without_checkpoint(tmp_path):
    with pytest.raises(ModelError, match="no checkpoint to resume from"):
        TabularGAN(**SETTINGS).fit(_table(), checkpoint_dir=tmp_path / "none", resume=True)
