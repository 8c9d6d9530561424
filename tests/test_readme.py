"""The README's tour runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_tour_runs():
    (tour,) = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    namespace: dict = {}
    exec(compile(tour, str(README), "exec"), namespace)
    assert namespace["y"].tolist() == [[0.0, 0.0, 0.0], [2.0, 0.0, 2.0]]
    assert namespace["r"].samples.shape[:2] == (50, 16)
