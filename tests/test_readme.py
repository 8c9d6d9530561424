"""The README's Python examples run as written."""

import re
from pathlib import Path

import pytest

from _helpers import torchvision_shim

README = Path(__file__).resolve().parents[1] / "README.md"


def run_blocks(heading: str) -> list[dict]:
    """Run each Python block of the README section `heading`; their namespaces."""
    section = README.read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    spaces = []
    for block in re.findall(r"```python\n(.*?)```", section, re.S):
        namespace: dict = {}
        exec(compile(block, str(README), "exec"), namespace)
        spaces.append(namespace)
    return spaces


def test_tour_runs():
    (namespace,) = run_blocks("A short tour")
    assert namespace["y"].tolist() == [[0.0, 0.0, 0.0], [2.0, 0.0, 2.0]]
    assert namespace["r"].samples.shape[:2] == (50, 16)


def test_transformer_examples_run():
    torchvision_shim.install()
    pytest.importorskip("transformers", reason="the [transformers] extra is not installed")
    pytest.importorskip("timm", reason="the [timm] extra is not installed")
    bert, vit = run_blocks("Use it in your transformer")
    assert bert["report"].routed[0] == "bert.encoder.layer.0.attention.self" and bert["report"]["Dropout"] == 6  # embeddings, 2 per layer, classifier
    assert bert["probs"].shape == (8, 4, 3) and bert["probs"].std(0).max() > 0  # MC samples differ
    assert len(vit["report"].routed) == 12 and vit["report"]["DropPath"] == 22  # two per block; block 0's rate is 0
