"""The image GAN's fit on 1 and on N processes under torchrun: the same ledger, and the time.

    .venv/bin/python benchmarks/distributed.py                      # 8x8 digits, 1 and 2 gloo processes
    .venv/bin/python benchmarks/distributed.py --processes 1 2 4 --epochs 4 --generator-steps 500

For each process count it launches ``torchrun --nproc_per_node N`` on a fit of
``ImageGAN`` (the shipped 8x8 digits, classes 0-9 declared, the test noise seed so every
run draws the same DP count and plans the same q, sigma and steps) and prints, per run: the
epsilon spent, the DP-SGD line (q, sigma, steps), the fit's wall seconds on rank 0, and the
CPU seconds of all processes together (wall is inflated when other work shares the cores:
quote ``uptime`` beside it). On a GPU machine (NCCL, one GPU per process) the same script
measures the scale-out; on a CPU-only machine with few cores it checks the accounting.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent("""
    import json, sys, time
    import numpy as np, torch
    from synthdata.images.distributed import start_cluster, stop_cluster
    from synthdata.images.estimator import ImageGAN
    out, settings, data = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    cluster = start_cluster(settings.get("device", "auto"))
    rank = 0 if cluster is None else cluster.rank
    with np.load(data) as arrays:
        images, labels = arrays["images"], arrays["labels"]
    start = time.perf_counter()
    model = ImageGAN(**settings).fit(images, labels)
    seconds = time.perf_counter() - start
    if rank == 0:
        ledger = model.ledger_.to_dict()
        (sgd,) = [line["parameters"] for line in ledger["budget"] if line["step"] == "discriminator"]
        with open(out, "w") as f:
            json.dump({"epsilon_spent": ledger["epsilon_spent"], "q": sgd["sample_rate"],
                       "sigma": sgd["noise_multiplier"], "steps": sgd["steps"], "fit_s": seconds}, f)
    stop_cluster()
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epsilon", type=float, default=10.0)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--generator-steps", type=int, default=300)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data", default=str(ROOT / "sample_datasets" / "digits.npz"))
    args = parser.parse_args()
    settings = dict(epsilon=args.epsilon, delta=1e-5, seed=0, epochs=args.epochs, batch_size=args.batch_size,
                    generator_steps=args.generator_steps, classes=list(range(10)), device=args.device,
                    insecure_noise_seed=7)  # benchmark only: the same DP count in every run
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print(f"{'processes':>9} {'epsilon':>10} {'q':>8} {'sigma':>8} {'steps':>6} {'fit_s':>7} {'wall_s':>7} {'cpu_s':>7}")
    with tempfile.TemporaryDirectory() as work:
        script = Path(work) / "worker.py"
        script.write_text(WORKER, encoding="utf-8")
        for n in args.processes:
            out = Path(work) / f"run{n}.json"
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(n),
                            "--master_addr", "127.0.0.1", "--master_port", str(port), str(script), str(out),
                            json.dumps(settings), args.data], env=env, check=True)
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            r = json.loads(out.read_text(encoding="utf-8"))
            print(f"{n:>9} {r['epsilon_spent']:>10.6f} {r['q']:>8.5f} {r['sigma']:>8.4f} {r['steps']:>6} "
                  f"{r['fit_s']:>7.1f} {wall:>7.1f} {cpu:>7.1f}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
