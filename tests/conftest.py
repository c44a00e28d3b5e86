from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from synthdata.cli import cli

ADULT = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "adult"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def invoke(runner):
    """Run the CLI in-process; returns click's Result."""

    def run(*args: str):
        return runner.invoke(cli, [str(a) for a in args])

    return run


def assert_one_line_error(result, *fragments: str, exit_code: int = 1) -> str:
    """The run failed cleanly: given exit status, one 'Error:' line, no traceback.

    'Warning: ' lines the command gave before it failed may precede it (they explain a
    refusal: the columns left out before none could be released).
    """
    assert result.exit_code == exit_code, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("Warning: ")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("Error: "), errors[0]
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


@pytest.fixture
def adult_train() -> Path:
    path = ADULT / "train.csv"
    if not path.exists():
        pytest.skip(f"{path} is not present (the shared datasets live beside the repository)")
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module's models (``pytestmark = pytest.mark.usefixtures(...)``).

    These networks are small, and on a busy 2-core machine two threads spin against
    each other (a 100-step fit: 4 s with one thread, 27-80 s with two).
    """
    import torch  # here, not at the top: most tests never load it

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
