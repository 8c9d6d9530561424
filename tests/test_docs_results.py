"""docs/results.md is what benchmarks/report.py makes of benchmarks/results/*.json: no number by hand."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _report():
    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_page_is_generated_from_the_json():
    report = _report()
    assert (ROOT / "docs" / "results.md").read_text() == report.render(), "run python benchmarks/report.py"


def test_every_results_file_has_a_section_naming_its_command(tmp_path):
    report = _report()
    (tmp_path / "x.json").write_text('{"machine": "m", "rows": [{"n": 1, "ms": 0.5}, {"n": 2, "ms": 0.25}]}')
    page = report.render(tmp_path)
    assert "## x\n" in page and "| `machine` | m |" in page
    assert "| n | ms |\n|---|---|---|\n" not in page and "| 1 | 0.5 |" in page and "| 2 | 0.25 |" in page
