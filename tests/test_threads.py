"""The `dropkit` command runs OpenMP with a passive wait policy; a library user's process keeps its own.

libgomp (torch's OpenMP runtime on Linux) prints its settings when it loads under OMP_DISPLAY_ENV=VERBOSE:
GOMP_SPINCOUNT is 0 under the passive policy and 300000 (about 3 ms of spinning) by default.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import dropkit

SRC = str(Path(dropkit.__file__).parents[1])


def _spin_count(command: list[str], **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    base["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run(
        command,
        check=False,
        env={**base, "OMP_DISPLAY_ENV": "VERBOSE", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r"GOMP_SPINCOUNT = '(\d+)'", done.stderr)
    if found is None:
        pytest.skip("torch's OpenMP runtime is not libgomp here (no GOMP_SPINCOUNT in OMP_DISPLAY_ENV's output)")
    return found.group(1)


@pytest.mark.parametrize("module", ["dropkit", "dropkit.cli"])
def test_the_command_waits_passively(module):
    assert _spin_count([sys.executable, "-m", module, "--help"]) == "0"


def test_the_console_script_waits_passively(tmp_path):
    # The console script as pip writes it: a file named dropkit that imports dropkit.cli and calls main.
    script = tmp_path / "dropkit"
    script.write_text("import sys\nfrom dropkit.cli import main\nsys.exit(main())\n")
    assert _spin_count([sys.executable, str(script), "--help"]) == "0"


def test_a_library_user_keeps_the_runtime_default():
    assert _spin_count([sys.executable, "-c", "import dropkit"]) == "300000"


def test_the_users_wait_policy_wins():
    assert _spin_count([sys.executable, "-m", "dropkit", "--help"], OMP_WAIT_POLICY="ACTIVE") != "0"
