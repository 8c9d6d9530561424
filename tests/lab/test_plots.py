"""dropkit.lab.plots: the MC-dropout plots are written, from tensors on any device, atomically."""

import pytest
import torch

from dropkit.lab import plots as P
from dropkit.mc import metrics as M


def test_plots_write_png(tmp_path):
    pytest.importorskip("matplotlib")
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(200, 4, generator=g), 1)
    labels = torch.randint(0, 4, (200,), generator=g)
    P.plot_reliability({"a": M.reliability(probs, labels)}, tmp_path / "rel.png")
    score = torch.special.entr(probs).sum(1)
    P.plot_histograms({"entropy": score, "mi": score / 2}, probs.argmax(1) == labels, tmp_path / "hist.png")
    for name in ("rel.png", "hist.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_of_device_tensors(tmp_path, device):
    pytest.importorskip("matplotlib")
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(200, 4, generator=g), 1).to(device)
    labels = torch.randint(0, 4, (200,), generator=g).to(device)
    P.plot_reliability({"a": M.reliability(probs, labels)}, tmp_path / "rel.png")
    P.plot_histograms({"entropy": torch.special.entr(probs).sum(1)}, probs.argmax(1) == labels, tmp_path / "hist.png")
    for name in ("rel.png", "hist.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_are_written_atomically_in_the_format_of_the_suffix(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    r = M.reliability(torch.tensor([[0.9, 0.1], [0.6, 0.4]]), torch.tensor([0, 1]))
    P.plot_reliability({"a": r}, tmp_path / "rel.svg")
    assert b"<svg" in (tmp_path / "rel.svg").read_bytes()[:1000]

    def interrupted(self, fname, **kwargs):
        with open(fname, "wb") as f:
            f.write(b"half an image")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", interrupted)
    plots = {
        "rel.png": lambda path: P.plot_reliability({"a": r}, path),
        "hist.png": lambda path: P.plot_histograms(
            {"entropy": torch.tensor([0.1, 0.5])}, torch.tensor([True, False]), path
        ),
    }
    for name, plot in plots.items():
        (tmp_path / name).write_bytes(b"previous")
        with pytest.raises(OSError, match="^disk full$"):
            plot(tmp_path / name)
        assert (tmp_path / name).read_bytes() == b"previous", name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hist.png", "rel.png", "rel.svg"]  # no temp file left
