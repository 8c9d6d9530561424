"""Builders of small IDX files for the lab's tests (real format, synthetic content)."""

import gzip
from pathlib import Path

import numpy as np

STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """The IDX encoding of a uint8 array: magic (0x08 type, ndim), big-endian dims, data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = (0x0800 | array.ndim) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write_idx(path: Path, array: np.ndarray, magic: int | None = None, gz: bool = True) -> Path:
    raw = idx_bytes(array, magic)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def make_idx_dir(
    directory: Path, n_train: int = 60, n_test: int = 20, side: int = 28, gz: bool = True, seed: int = 0
) -> Path:
    """Four IDX files of a learnable toy problem (MNIST-sized by default): the label is the brightest of the first 10 pixels."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    suffix = ".gz" if gz else ""
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 100, size=(n, side, side), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        images.reshape(n, -1)[np.arange(n), labels] = 255
        write_idx(directory / (STEMS[f"{split}_images"] + suffix), images, gz=gz)
        write_idx(directory / (STEMS[f"{split}_labels"] + suffix), labels, gz=gz)
    return directory
