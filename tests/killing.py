"""Killing a fit mid-way for the resume tests: SIGKILL once its second training checkpoint is on disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def kill_after_second_checkpoint(script: str, checkpoints: Path, *, timeout: float = 120) -> None:
    """Run ``script`` in a fresh Python and SIGKILL it once ``checkpoints/training.pt`` has been
    replaced once (the first training state is saved before any step: wait for a later one)."""
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.time() + timeout
        first = None
        while True:
            assert proc.poll() is None, "the fit ended before its second checkpoint"
            assert time.time() < deadline, f"no checkpoint within {timeout:g} s"
            if (checkpoints / "training.pt").exists():
                inode = os.stat(checkpoints / "training.pt").st_ino
                first = inode if first is None else first
                if inode != first:
                    break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
