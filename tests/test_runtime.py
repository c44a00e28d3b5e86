"""The runtime's thread policy: what a fit uses on a shared machine, and that it leaves the
caller's torch setting as it found it."""

import os

import pytest
import torch

from synthdata import runtime
from synthdata.models.base import Synthesizer


@pytest.fixture
def no_thread_settings(monkeypatch):
    monkeypatch.delenv(runtime.THREADS_ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


class _Recorder(Synthesizer):
    model_format = "test-recorder/1"

    def __init__(self, *, size: int = 1) -> None:
        self.size = size

    def fit(self, data):
        self.threads_ = torch.get_num_threads()
        return self


def test_a_small_fit_uses_one_thread_and_restores_the_callers(no_thread_settings):
    torch.set_num_threads(2)
    model = _Recorder().fit(None)
    assert model.threads_ == 1
    assert torch.get_num_threads() == 2


def test_the_environment_and_an_explicit_count_take_precedence(no_thread_settings, monkeypatch):
    limit = runtime.available_cpus()
    monkeypatch.setenv("OMP_NUM_THREADS", "64")
    assert runtime.thread_count() == limit  # never more than the CPUs this process may use
    monkeypatch.setenv(runtime.THREADS_ENV, "1")
    assert runtime.thread_count() == 1  # SYNTHDATA_THREADS before OMP_NUM_THREADS
    assert runtime.thread_count(64) == limit  # --threads before both
    monkeypatch.setenv(runtime.THREADS_ENV, "not a number")
    assert runtime.thread_count() == limit  # an unreadable value is skipped, the next one read


def test_threads_given_once_reach_every_later_fit(no_thread_settings, monkeypatch):
    monkeypatch.setattr(runtime, "available_cpus", lambda: 4)
    assert runtime.configure_threads(3) == 3
    assert os.environ[runtime.THREADS_ENV] == "3"
    assert _Recorder().fit(None).threads_ == 3


def test_every_registered_model_fits_under_the_policy():
    from synthdata.models import MODELS, model_class

    for name in MODELS:
        assert getattr(model_class(name).fit, "under_thread_policy", False), name


def test_large_steps_may_use_more_threads(no_thread_settings, monkeypatch):
    monkeypatch.setattr(runtime, "available_cpus", lambda: 8)
    assert runtime.thread_count(work=1e6) == 1
    assert runtime.thread_count(work=1e9) == 4
