"""What intercepting torch's dropout calls costs a converted model that makes none: BERT training step, seq 128.

BERT 4 layers x 256 hidden, 4 heads, batch 8, seq 128, dropout 0.1, one AdamW step.
Both sides are replace_dropout'ed copies of the same weights (dropout modules and
attention on dropkit); "interceptor removed" then drops the forward hooks and the
TorchFunctionMode (dropkit.convert.integrations.intercept.remove), so the ratio is the
interception alone. Timed in interleaved rounds, median of --repeats; also the
forward alone, where the interception runs. Writes JSON.

Usage: python benchmarks/bench_intercept.py [--repeats 15] [--out benchmarks/results/intercept.json]
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _helpers import torchvision_shim  # noqa: E402  (transformers imports torchvision where it is installed)

torchvision_shim.install()

import torch  # noqa: E402
from transformers import BertConfig, BertForMaskedLM  # noqa: E402

import dropkit  # noqa: E402
from dropkit.convert.integrations import intercept  # noqa: E402

VARIANTS = ("interceptor removed", "converted")


def bert(variant: str) -> torch.nn.Module:
    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
    )  # fmt: skip
    model = BertForMaskedLM(config).train()
    if variant == "stock":  # torch's dropout: for benchmarks/bench_compile.py
        return model
    model, report = dropkit.replace_dropout(model)
    assert report.complete and all(s.op == "attention" for s in report.sites), (
        "BERT: no torch dropout call to intercept"
    )
    if variant == "interceptor removed":
        intercept.remove(model)
    return model


def steppers(model: torch.nn.Module, batch: int = 8, seq: int = 128):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, model.config.vocab_size, (batch, seq), generator=torch.Generator().manual_seed(1))

    def step():
        opt.zero_grad(set_to_none=True)
        model(ids, labels=ids).loss.backward()
        opt.step()

    def forward():
        with torch.no_grad():
            model(ids)

    return {"step": step, "forward": forward}


def interleaved(fns: dict, repeats: int) -> dict:
    """Median milliseconds of each callable, timed in interleaved rounds after one warm-up call each."""
    times = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--out", default="benchmarks/results/intercept.json")
    args = ap.parse_args()
    models = {v: steppers(bert(v)) for v in VARIANTS}
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                    "torch": torch.__version__, "load_average": os.getloadavg(),
                    "note": "shared machine: other engineers' jobs ran alongside"},
        "config": "BERT 4x256, 4 heads, batch 8, seq 128, dropout 0.1, AdamW",
    }  # fmt: skip
    print("| BERT 4x256, batch 8, seq 128 | interceptor removed (ms) | converted (ms) | ratio | target |")
    print("|---|---|---|---|---|")
    for what in ("step", "forward"):
        ms = interleaved({v: fns[what] for v, fns in models.items()}, args.repeats)
        ratio = ms["converted"] / ms["interceptor removed"]
        result[what] = {"ms": ms, "ratio": ratio}
        target = "<= 1.01x" if what == "step" else "-"
        print(f"| {what} | {ms['interceptor removed']:.1f} | {ms['converted']:.1f} | {ratio:.3f}x | {target} |")
    result["machine"]["load_average_after"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out).with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(args.out)


if __name__ == "__main__":
    main()
