"""Image DP-SGD on two processes under torchrun (gloo, CPU) is the single-process release.

One torchrun launch (two processes) runs, in each process:
1. the distributed DP optimizer on a tiny linear model with known per-sample gradients and
   a noise source that counts its draws: noise is drawn on rank 0 only, once per step, and
   every process ends with (sum of every process's clipped gradients + the one noise) / B;
2. an ImageGAN fit on digits. The test then fits the same settings in one process: the
   ledgers (ε, δ, the plan's q, σ and steps, every line) are equal, the two processes'
   parts of the images partition them, and both processes hold the same weights.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from synthdata.images.estimator import ImageGAN
from .conftest import assert_one_line_error

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "sample_datasets" / "digits.npz"
# The test noise seed (offset by the rank in each process) makes rank 0 draw the same DP
# image count as the single-process fit: both plan the same q, sigma and steps.
SETTINGS = dict(epsilon=4.0, delta=1e-5, seed=3, generator_steps=12, epochs=0.5, batch_size=32, features=200,
                classes=list(range(10)), device="cpu", insecure_noise_seed=11)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

WORKER = textwrap.dedent("""
    import hashlib, json, os, sys, warnings
    import numpy as np, torch
    import torch.distributed as dist
    torch.set_num_threads(1)
    from synthdata.images import estimator
    from synthdata.images.distributed import start_cluster, stop_cluster
    from synthdata.privacy import PrivacyLedger
    from synthdata.privacy.distributed import SharedReleaseLedger
    from synthdata.privacy.dpsgd import make_dp_optimizer

    out, settings, digits = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    cluster = start_cluster("cpu")
    rank, world = cluster.rank, cluster.world_size
    result = {"rank": rank, "world": world, "backend": cluster.backend}

    # 1. The optimizer alone: per-sample gradients x_i of a linear model (loss = w . x_i),
    #    clipped to norm C; noise 'std * ones' from a counting source.
    class Counting:
        calls = 0
        def torch_gaussian(self, std, reference):
            Counting.calls += 1
            return torch.full_like(reference, std)
    from opacus import GradSampleModule
    model = torch.nn.Linear(3, 1, bias=False)
    ledger = SharedReleaseLedger(epsilon=10.0, delta=1e-5, noise=None)
    optimizer = make_dp_optimizer(torch.optim.SGD(model.parameters(), lr=1.0), ledger=ledger, step="test",
                                  noise_multiplier=0.5, max_grad_norm=1.0, sample_rate=0.1,
                                  expected_batch_size=10)
    optimizer.noise_source = Counting()
    sampled = GradSampleModule(model, loss_reduction="sum")
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    x = torch.tensor([[3.0, 0.0, 4.0], [0.1, 0.2, 0.2]]) * (rank + 1)  # norms 5 (clipped) and 0.3
    optimizer.zero_grad(set_to_none=True)
    sampled(x).sum().backward()
    optimizer.step()
    result["optimizer"] = {"class": type(optimizer).__name__, "noise_draws": Counting.calls,
                           "grad": model.weight.grad.flatten().tolist(),
                           "steps_on_ledger": ledger.to_dict()["budget"][-1]["parameters"].get("steps")}
    # The same with gradients clipped before (what the image discriminator hands over): p.grad = rank + 1.
    optimizer = make_dp_optimizer(torch.optim.SGD(model.parameters(), lr=1.0), ledger=ledger, step="clipped",
                                  noise_multiplier=0.5, max_grad_norm=1.0, sample_rate=0.1,
                                  expected_batch_size=10, clipped_before=True)
    optimizer.noise_source = Counting()
    optimizer.zero_grad(set_to_none=True)
    model.weight.grad = torch.full_like(model.weight, float(rank + 1))
    optimizer.step()
    result["clipped_before"] = {"class": type(optimizer).__name__, "noise_draws": Counting.calls,
                                "grad": model.weight.grad.flatten().tolist()}
    try:
        make_dp_optimizer(torch.optim.SGD(model.parameters(), lr=1.0), ledger=PrivacyLedger(epsilon=1.0, delta=1e-5),
                          step="plain", noise_multiplier=1.0, max_grad_norm=1.0, sample_rate=0.1,
                          expected_batch_size=10)
        result["plain_ledger_refused"] = False
    except Exception as exc:
        result["plain_ledger_refused"] = type(exc).__name__

    # 2. An ImageGAN fit: record the part each process samples from, and its discriminator.
    parts, discriminators = [], []
    class Spy(estimator.DPDiscriminator):
        def __init__(self, **kwargs):
            parts.append(int(kwargs["real"].shape[0]))
            super().__init__(**kwargs)
            discriminators.append(self)
    estimator.DPDiscriminator = Spy
    data = np.load(digits)
    try:  # rank 1 reads other images: refused on both processes before anything is released
        images = data["images"] if rank == 0 else data["images"][::-1].copy()
        estimator.ImageGAN(**settings).fit(images, data["labels"])
        result["other_images"] = "fitted"
    except Exception as exc:
        result["other_images"] = f"{type(exc).__name__}: {exc}"
    fitted = estimator.ImageGAN(**settings).fit(data["images"], data["labels"])
    def digest(module):
        h = hashlib.sha256()
        for name, tensor in sorted(module.state_dict().items()):
            h.update(name.encode() + tensor.detach().cpu().numpy().tobytes())
        return h.hexdigest()
    result.update(ledger=fitted.ledger_.to_dict(), plan=fitted.noise_plan_, part=parts[0],
                  expected_fakes=discriminators[0].expected, steps_done=discriminators[0].done,
                  generator=digest(fitted.generator_), discriminator=digest(discriminators[0].module))
    estimator.DPDiscriminator = Spy.__bases__[0]

    # 3. The command a steward runs under torchrun (small networks: the test is about the processes).
    estimator.ImageGAN.__init__.__kwdefaults__.update(generator_steps=12, features=200)
    from synthdata.cli import cli
    cli.main(["release", digits, "--epsilon", "4", "--epochs", "0.5", "--batch-size", "32", "--classes",
              ",".join(map(str, range(10))), "--out", os.path.join(out, "release"), "--quiet"],
             standalone_mode=False)
    result["group_left"] = not dist.is_initialized()
    result["hooks_left"] = sum(len(p._post_accumulate_grad_hooks or {}) for p in fitted.generator_.parameters())
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)
    stop_cluster()
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    if not DIGITS.exists():
        pytest.skip(f"{DIGITS} is not present")
    with np.load(DIGITS) as data:
        images, labels = data["images"][:300], data["labels"][:300]
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    np.savez(path, images=images, labels=labels)
    return path, images, labels


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, digits):
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("this torch build has no torch.distributed gloo backend")
    out = tmp_path_factory.mktemp("ranks")
    script = out / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    # The release's signing key is made under XDG_CONFIG_HOME: a SYNTHDATA_CONFIG_DIR of the caller's
    # would take precedence (the key went there, and the check below found none).
    inherited = {name: value for name, value in os.environ.items() if name != "SYNTHDATA_CONFIG_DIR"}
    env = {**inherited, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "XDG_CONFIG_HOME": str(out / "config")}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(_free_port()), str(script), str(out), json.dumps(SETTINGS), str(digits[0])]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ranks = [json.loads((out / f"rank{rank}.json").read_text(encoding="utf-8")) for rank in (0, 1)]
    return ranks, out, done.stdout


def test_the_distributed_optimizer_adds_the_noise_once_to_the_sum_of_both_processes(two_processes):
    ranks, _, _ = two_processes
    first, second = (result["optimizer"] for result in ranks)
    assert ranks[0]["backend"] == "gloo" and ranks[0]["world"] == 2
    assert first["class"] == "SecureDistributedDPOptimizer"
    assert (first["noise_draws"], second["noise_draws"]) == (1, 0)  # one parameter, one step, rank 0 only
    # Clipped per-sample gradients: rank 0 has (3,0,4)->(.6,0,.8) and (.1,.2,.2); rank 1 (6,0,8)->(.6,0,.8) and
    # (.2,.4,.4). Sum (1.5, .6, 2.2) + noise 0.5 * 1 per coordinate, over the whole batch's expected size 10.
    expected = [(1.5 + 0.5) / 10, (0.6 + 0.5) / 10, (2.2 + 0.5) / 10]
    for result in (first, second):
        assert result["grad"] == pytest.approx(expected, rel=1e-6)
    assert first["steps_on_ledger"] == second["steps_on_ledger"] == 1
    # Clipped before: (1 + 2 + noise 0.5) / 10 in every coordinate, noise drawn on rank 0 only.
    first, second = (result["clipped_before"] for result in ranks)
    assert first["class"] == "SecureDistributedDPOptimizerFastGradientClipping"
    assert (first["noise_draws"], second["noise_draws"]) == (2, 0)
    assert first["grad"] == second["grad"] == pytest.approx([0.35] * 3, rel=1e-6)
    # A fit not made for several processes (a plain ledger) is refused DP-SGD inside the group.
    assert ranks[0]["plain_ledger_refused"] == "PrivacyError"


def test_two_processes_spend_exactly_the_single_process_epsilon(two_processes, digits):
    _, images, labels = digits
    single = ImageGAN(**SETTINGS).fit(images, labels)
    one = single.ledger_.to_dict()
    first, second = two_processes[0]
    assert first["ledger"] == second["ledger"]
    assert first["plan"] == second["plan"] == json.loads(json.dumps(single.noise_plan_))
    ledger = first["ledger"]
    assert ledger["epsilon_spent"] == one["epsilon_spent"] <= SETTINGS["epsilon"]
    assert ledger["delta"] == one["delta"]
    assert ledger["budget"] == json.loads(json.dumps(one["budget"]))
    sgd = [spend["parameters"] for spend in ledger["budget"] if spend["step"] == "discriminator"]
    (single_sgd,) = [spend["parameters"] for spend in one["budget"] if spend["step"] == "discriminator"]
    assert len(sgd) == 1 and sgd[0]["steps"] > 0
    for key in ("sample_rate", "noise_multiplier", "steps", "max_grad_norm"):  # q, sigma, steps, C
        assert sgd[0][key] == single_sgd[key], key
    assert first["steps_done"] == second["steps_done"] == sgd[0]["steps"]


def test_the_processes_sample_disjoint_halves_and_end_with_the_same_weights(two_processes, digits):
    first, second = two_processes[0]
    for rank in (first, second):  # a process reading other images is refused on every process
        assert rank["other_images"].startswith("ModelError: process 1 of the torchrun group reads other images")
    assert first["part"] + second["part"] == len(digits[1]) and abs(first["part"] - second["part"]) <= 1
    assert first["expected_fakes"] + second["expected_fakes"] >= 2
    assert first["discriminator"] == second["discriminator"]
    assert first["generator"] == second["generator"]


def test_torchrun_release_writes_one_verified_release_from_rank_0(two_processes, invoke):
    ranks, out, stdout = two_processes
    assert all(rank["group_left"] for rank in ranks)  # the command leaves the group when it is done
    assert [rank["hooks_left"] for rank in ranks] == [0, 0]  # and no generator keeps a gradient hook
    assert stdout.count("Released ") == 1  # rank 0 reports; rank 1 took part in the fit only
    releases = sorted(path.name for path in out.iterdir() if path.name.startswith("release"))
    assert releases == ["release", "release.steward-audit"]
    entries = json.loads((out / "budget-ledger.json").read_text(encoding="utf-8"))["entries"]
    assert [(entry["state"], entry["epsilon"]) for entry in entries] == [("released", 4.0)]  # one spend, once
    public_key = out / "config" / "synthdata" / "signing_key.pub.pem"
    result = invoke("verify", out / "release", "--public-key", public_key)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "release" / "report.json").read_text(encoding="utf-8"))["predicate"]["privacy"]
    (sgd,) = [line for line in report["budget"] if line["step"] == "discriminator"]
    assert sgd["parameters"]["steps"] >= 1 and report["epsilon_spent"] <= 4.0


@pytest.mark.parametrize("extra", [[], ["--model", "vae"]])
def test_torchrun_refuses_tables_and_the_image_vae_in_one_line(invoke, monkeypatch, tmp_path, digits, extra):
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it; refused before joining any group
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n3,4\n", encoding="utf-8")
    data = digits[0] if extra else table
    result = invoke("release", data, "--epsilon", "1", "--out", tmp_path / "out", *extra)
    assert_one_line_error(result, "torchrun", "image GAN only")
    assert not (tmp_path / "out").exists() and not torch.distributed.is_initialized()
