"""Shared fixtures of the DeepDose test suite (core, mrml and cli layers)."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def sha256_of_tree(path: Path) -> dict:
    """SHA-256 of a file, or of every file below a folder (to prove inputs were not modified)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def filter_progress_fractions(stdout: str) -> list:
    """The fractions of the ``<filter-progress>`` lines a Slicer CLI printed, in order."""
    return [float(line.split(">")[1].split("<")[0]) for line in stdout.splitlines()
            if line.startswith("<filter-progress>")]


def run_deepdose(*args, check: bool = True, env=None, timeout: float = 600):
    """Run the `deepdose` command as `python -m DeepDoseLib` (identical to the console script).

    With ``check`` a non-zero exit fails the test with the command's stderr; otherwise the caller
    inspects the returned CompletedProcess.
    """
    proc = subprocess.run([sys.executable, "-m", "DeepDoseLib", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"deepdose {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture
def one_torch_thread():
    """torch on one thread for the test (restored after): on 2 cores, 2 threads oversubscribe small networks."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def demo_case():
    """The embedded demo PET/CT (built once per session)."""
    from DeepDoseLib.demo import make_demo_case

    return make_demo_case()


@pytest.fixture(scope="session")
def demo_files(tmp_path_factory, demo_case):
    """The demo case written as NIfTI files: dict name → path."""
    from DeepDoseLib.demo import write_demo_case

    return write_demo_case(demo_case, tmp_path_factory.mktemp("demo"))


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (reference data beside the checkout); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data folder {SHARED_DATA} is absent (it lies beside the checkout on dev machines and CI)")
    return SHARED_DATA
