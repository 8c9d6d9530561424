"""Data sets for the lab: MNIST and Fashion-MNIST from IDX files, scikit-learn's digits as a fallback.

IDX files (gzip or raw) are searched in this order: `data_dir`, `$DROPKIT_DATA`,
/usr/share/datasets (Debian's `dataset-fashion-mnist` package), ~/.cache/dropkit.
In each root the files may sit in `<root>/<name>/` or, for an explicit data_dir,
directly in it. `download=True` fetches the official files and checks their sha256.

Examples:
    >>> ds = load("digits")
    >>> ds.x_train.shape, ds.n_classes
    (torch.Size([1438, 64]), 10)
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import math
import os
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import torch

from .errors import DataError

__all__ = [
    "DataError",
    "Dataset",
    "DATASETS",
    "IMAGE_SIZE",
    "N_CLASSES",
    "read_idx",
    "find_idx_dir",
    "search_roots",
    "download",
    "load",
    "load_test_tensors",
    "stratified_order",
    "train_subset",
]

DATASETS = ("auto", "fashion-mnist", "mnist", "digits", "idx")  # idx: a folder of your own IDX files (--data-dir)

# What the published data sets hold; a custom "idx" folder's classes are those its train split has.
IMAGE_SIZE = {"fashion-mnist": (28, 28), "mnist": (28, 28)}
N_CLASSES = {"fashion-mnist": 10, "mnist": 10, "digits": 10}

# (file stem, magic number): 0x08 = unsigned byte, last byte = number of dimensions.
_FILES = {
    "train_images": ("train-images-idx3-ubyte", 0x00000803),
    "train_labels": ("train-labels-idx1-ubyte", 0x00000801),
    "test_images": ("t10k-images-idx3-ubyte", 0x00000803),
    "test_labels": ("t10k-labels-idx1-ubyte", 0x00000801),
}

# Official locations and sha256 of the .gz files (the same sums torchvision's md5s identify).
MIRRORS = {
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
}
SHA256 = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
}

SYSTEM_ROOT = Path("/usr/share/datasets")
FASHION_HINT = (
    "to use Fashion-MNIST: apt-get install dataset-fashion-mnist, or dropkit demo --dataset fashion-mnist --download"
)


@dataclasses.dataclass
class Dataset:
    """A classification data set as in-memory tensors: x float32 (n, features), y int64 (n,).

    Inputs are standardised with the training set's mean and standard deviation.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str  # where it was read from, for the run's config.json
    notice: str | None = None  # a line for the user, e.g. why digits replaced Fashion-MNIST
    classes: int | None = None  # the number of classes; None: one more than the largest label

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_classes(self) -> int:
        if self.classes is not None:
            return self.classes
        return int(max(self.y_train.max(), self.y_test.max())) + 1


def _open(path: Path):
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def read_idx(path, magic: int | None = None) -> np.ndarray:
    """Read one IDX file (gzip or raw) of unsigned bytes, checking its magic number and size.

    Args:
        path: the file.
        magic: the expected magic number (0x803 for images, 0x801 for labels); None accepts any
            unsigned-byte IDX file.

    Raises:
        DataError: wrong magic number, or a file shorter or longer than its header says.

    Examples:
        >>> labels = read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", 0x801)
    """
    path = Path(path)
    try:
        with _open(path) as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:  # gzip's errors for a truncated or corrupt stream
        raise DataError(f"cannot read {path}: {e}") from None
    if len(raw) < 4:
        raise DataError(f"{path} is truncated: {len(raw)} bytes, an IDX header needs at least 4")
    found = int.from_bytes(raw[:4], "big")
    if (magic is not None and found != magic) or found >> 8 != 0x08 or not 1 <= (found & 0xFF) <= 4:
        want = f"0x{magic:08x}" if magic is not None else "0x000008NN"
        raise DataError(f"{path} is not an IDX file of the expected kind: magic number 0x{found:08x}, expected {want}")
    ndim = found & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated: {len(raw)} bytes, its header alone needs {header}")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    size = math.prod(dims)  # exact: a corrupt header may claim more than int64 holds
    if len(raw) - header != size:
        state = "truncated" if len(raw) - header < size else "longer than its header says"
        raise DataError(
            f"{path} is {state}: {len(raw) - header} data bytes, dimensions {'x'.join(map(str, dims))} need {size}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _file(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def _has_all(directory: Path) -> bool:
    return all(_file(directory, stem) is not None for stem, _ in _FILES.values())


def search_roots(data_dir=None) -> list[Path]:
    """The directories searched for IDX files, in order (data_dir first when given)."""
    roots = [Path(data_dir).expanduser()] if data_dir is not None else []
    if os.environ.get("DROPKIT_DATA"):
        roots.append(Path(os.environ["DROPKIT_DATA"]).expanduser())
    return roots + [SYSTEM_ROOT, Path.home() / ".cache" / "dropkit"]


def find_idx_dir(name: str, data_dir=None) -> Path | None:
    """The first directory holding all four IDX files of `name`, or None.

    An explicit data_dir must exist; it may hold the files directly or in data_dir/<name>.

    Examples:
        >>> find_idx_dir("fashion-mnist")
        PosixPath('/usr/share/datasets/fashion-mnist')
    """
    if data_dir is not None and not Path(data_dir).expanduser().is_dir():
        raise DataError(f"data directory not found: {data_dir}")
    for i, root in enumerate(search_roots(data_dir)):
        candidates = [root / name] + ([root] if data_dir is not None and i == 0 else [])
        for directory in candidates:
            if _has_all(directory):
                return directory
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(name: str, data_dir=None, mirror: str | None = None) -> Path:
    """Fetch the four official .gz files of `name` into data_dir/<name> (default ~/.cache/dropkit/<name>).

    Each file is checked against its published sha256 before it is moved into place,
    so a failed or tampered download never leaves a file that looks valid.

    Examples:
        >>> download("mnist")  # doctest: +SKIP
        PosixPath('/root/.cache/dropkit/mnist')
    """
    if name not in SHA256:
        raise DataError(f"--download supports {', '.join(SHA256)}, not {name!r}")
    root = Path(data_dir).expanduser() if data_dir is not None else Path.home() / ".cache" / "dropkit"
    target = root / name
    target.mkdir(parents=True, exist_ok=True)
    base = mirror or MIRRORS[name]
    for filename, expected in SHA256[name].items():
        final = target / filename
        if final.is_file() and _sha256(final) == expected:
            continue
        fd, tmp = tempfile.mkstemp(dir=target, prefix=f".{filename}.")
        os.close(fd)
        try:
            try:
                urllib.request.urlretrieve(base + filename, tmp)
            except OSError as e:
                raise DataError(f"cannot download {base + filename}: {e}") from None
            got = _sha256(Path(tmp))
            if got != expected:
                raise DataError(f"{base + filename} has sha256 {got}, expected {expected}; not saved")
            os.replace(tmp, final)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return target


def _standardise(x_train: np.ndarray, x_test: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    # One scalar mean and std from the training set: keeps pixels comparable and leaks nothing from test.
    train = torch.from_numpy(x_train.reshape(len(x_train), -1).astype(np.float32))
    test = torch.from_numpy(x_test.reshape(len(x_test), -1).astype(np.float32))
    mean, std = train.mean(), train.std()
    if not std > 0:  # a constant training set: centre it, but dividing by 0 would give inf and NaN
        std = torch.ones_like(std)
    return (train - mean) / std, (test - mean) / std


def _check_labels(path: Path, labels: np.ndarray, allowed: np.ndarray, classes: str) -> None:
    """DataError naming the file, the first label outside `allowed` (a bool per byte value), its index and byte."""
    bad = np.flatnonzero(~allowed[labels])
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{path}: label {labels[i]} at index {i} (byte {8 + i}) is outside {classes}")


def _present(directory: Path, stem: str) -> Path:
    path = _file(directory, stem)
    assert path is not None, f"{directory} was checked to hold {stem} (find_idx_dir, download)"
    return path


def _load_idx(name: str, directory: Path) -> Dataset:
    paths = {key: _present(directory, stem) for key, (stem, _) in _FILES.items()}
    arrays = {key: read_idx(paths[key], magic) for key, (_, magic) in _FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if len(images) != len(labels):
            raise DataError(
                f"{directory}: {split} images and labels disagree: {len(images)} images, {len(labels)} labels"
            )
        if len(images) == 0:
            raise DataError(f"{paths[f'{split}_images']}: no images (its header gives a count of 0)")
    size = "x".join(map(str, arrays["train_images"].shape[1:]))
    if name in IMAGE_SIZE and arrays["train_images"].shape[1:] != IMAGE_SIZE[name]:
        want = "x".join(map(str, IMAGE_SIZE[name]))
        raise DataError(f"{paths['train_images']}: images of {size} (header bytes 8-15), {name}'s are {want}")
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        test_size = "x".join(map(str, arrays["test_images"].shape[1:]))
        raise DataError(
            f"{paths['test_images']}: images of {test_size} (header bytes 8-15), the train images are {size}"
        )
    train_classes = np.bincount(arrays["train_labels"], minlength=256) > 0
    if name in N_CLASSES:
        allowed, classes = np.arange(256) < N_CLASSES[name], f"{name}'s classes 0-{N_CLASSES[name] - 1}"
        _check_labels(paths["train_labels"], arrays["train_labels"], allowed, classes)
    else:  # a custom folder: its train split defines the classes, and the test split may use only those
        shown = ", ".join(map(str, np.flatnonzero(train_classes)))
        allowed, classes = (
            train_classes,
            f"the train split's classes ({shown if len(shown) <= 60 else shown[:57] + '...'})",
        )
    _check_labels(paths["test_labels"], arrays["test_labels"], allowed, classes)
    x_train, x_test = _standardise(arrays["train_images"], arrays["test_images"])
    y_train = torch.from_numpy(arrays["train_labels"].astype(np.int64))
    y_test = torch.from_numpy(arrays["test_labels"].astype(np.int64))
    n_classes = N_CLASSES.get(name, int(np.flatnonzero(train_classes).max()) + 1)
    return Dataset(name, x_train, y_train, x_test, y_test, source=str(directory), classes=n_classes)


def _load_digits(notice: str | None = None) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # A fixed split (not the run's seed): every run of every command sees the same test set.
    order = np.random.default_rng(0).permutation(len(bunch.target))
    n_test = len(order) // 5
    test, train = order[:n_test], order[n_test:]
    x_train, x_test = _standardise(bunch.data[train], bunch.data[test])
    y = torch.from_numpy(bunch.target.astype(np.int64))
    return Dataset(
        "digits",
        x_train,
        y[train],
        x_test,
        y[test],
        source="sklearn.datasets.load_digits",
        notice=notice,
        classes=N_CLASSES["digits"],
    )


def load(name: str = "auto", data_dir=None, download_missing: bool = False) -> Dataset:
    """Load a data set by name: auto, fashion-mnist, mnist, digits, or idx (the IDX files in data_dir).

    `auto` is Fashion-MNIST where found, else digits with a notice saying how to get
    Fashion-MNIST. `download_missing` fetches MNIST or Fashion-MNIST when not found.
    (Fashion-)MNIST must have 28x28 images and labels 0-9; an idx folder's classes are
    the labels of its train split, and its test labels must be among them.

    Raises:
        DataError: unknown name, missing directory or files, a corrupt file, images of the
            wrong size or a label outside the classes (naming the file, the value and its position).

    Examples:
        >>> ds = load("fashion-mnist")  # doctest: +SKIP
        >>> ds.x_train.shape  # doctest: +SKIP
        torch.Size([60000, 784])
    """
    if name not in DATASETS:
        raise DataError(f"dataset must be one of {', '.join(DATASETS)}, got {name!r}")
    if name == "digits":
        return _load_digits()
    if name == "idx" and data_dir is None:
        raise DataError("dataset 'idx' reads a folder of your own IDX files: pass --data-dir DIR")
    wanted = "fashion-mnist" if name == "auto" else name
    creatable = download_missing and data_dir is not None and not Path(data_dir).expanduser().exists()
    directory = None if creatable else find_idx_dir(wanted, data_dir)
    if directory is None and download_missing:
        directory = download(wanted, data_dir)
    if directory is not None:
        return _load_idx(wanted, directory)
    if name == "auto":
        return _load_digits(notice=f"Fashion-MNIST not found, using scikit-learn's digits (8x8); {FASHION_HINT}")
    searched = ", ".join(str(r / wanted) for r in search_roots(data_dir))
    raise DataError(f"{wanted} IDX files not found (searched {searched}); pass --data-dir DIR or --download")


def load_test_tensors(name: str, data_dir=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The test split of a data set as (x float32 (n, features), y int64 (n,)), preprocessed as in training.

    Use it with runs.load_model to evaluate a trained run:

    Examples:
        >>> model, settings = runs.load_model("runs/demo")  # doctest: +SKIP
        >>> x, y = load_test_tensors(settings.dataset, settings.data_dir)  # doctest: +SKIP
    """
    ds = load(name, data_dir)
    return ds.x_test, ds.y_test


def stratified_order(y: torch.Tensor, seed: int) -> torch.Tensor:
    """A permutation of range(len(y)), drawn from `seed`, whose every prefix holds each class in proportion.

    Each class is shuffled, and its j-th example of n_c gets the key (j + 1/2) / n_c; sorting by the key
    interleaves the classes so that any first N examples hold within one of N * n_c / n of class c.
    Prefixes are nested: the first 500 examples are part of the first 1000.

    Examples:
        >>> y = torch.tensor([0] * 8 + [1] * 2)
        >>> torch.bincount(y[stratified_order(y, seed=0)[:5]]).tolist()
        [4, 1]
    """
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    shuffled = y[perm]
    by_class = torch.argsort(shuffled, stable=True)
    counts = torch.bincount(shuffled)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty(len(y), dtype=torch.int64)
    rank[by_class] = torch.arange(len(y)) - starts[shuffled[by_class]]
    key = (rank.double() + 0.5) / counts[shuffled].double()
    return perm[torch.argsort(key, stable=True)]


def train_subset(y: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Indices of a class-stratified subset of n examples drawn from `seed` (the first n of stratified_order).

    Raises:
        DataError: n is more than the examples in y.

    Examples:
        >>> ds = load("digits")
        >>> torch.bincount(ds.y_train).tolist()  # 1438 examples
        [150, 144, 144, 143, 148, 143, 149, 137, 133, 147]
        >>> torch.bincount(ds.y_train[train_subset(ds.y_train, 100, seed=0)]).tolist()
        [11, 10, 10, 10, 10, 10, 10, 10, 9, 10]
    """
    if n > len(y):
        raise DataError(f"train_size {n} is more than the {len(y)} examples of the training split")
    return stratified_order(y, seed)[:n]
