"""The README's Python examples run as written."""

import re
from pathlib import Path

import pytest
from _helpers import torchvision_shim

README = Path(__file__).resolve().parents[1] / "README.md"


def run_blocks(heading: str, given: dict | None = None) -> list[dict]:
    """Run each Python block of the README section `heading` (with the names in `given`); their namespaces."""
    section = README.read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    spaces = []
    for block in re.findall(r"```python\n(.*?)```", section, re.S):
        namespace: dict = dict(given or {})
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
    assert (
        bert["report"].routed[0] == "bert.encoder.layer.0.attention.self" and bert["report"]["Dropout"] == 6
    )  # embeddings, 2 per layer, classifier
    assert bert["probs"].shape == (8, 4, 3) and bert["probs"].std(0).max() > 0  # MC samples differ
    assert len(vit["report"].routed) == 12 and vit["report"]["DropPath"] == 22  # two per block; block 0's rate is 0


def test_lora_example_runs():
    # The snippet names a model and a batch it does not build: a tiny Llama and its tokens stand in.
    torchvision_shim.install()
    peft = pytest.importorskip("peft", reason="the [peft] extra is not installed")
    from _helpers.lora import tiny_llama, tokens

    import dropkit

    (namespace,) = run_blocks(
        "LoRA fine-tuning", {"peft": peft, "dropkit": dropkit, "base_model": tiny_llama(64, 1), "ids": tokens(2, 8)}
    )
    assert [n for n in namespace["report"].routed if "lora_A" in n][0].endswith("q_proj.lora_A.default")
    assert all(p.grad is not None for n, p in namespace["model"].named_parameters() if "lora_A" in n)
