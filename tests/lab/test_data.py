"""dropkit.lab.data: IDX reading and validation, the search order, digits, --download's sha256 check."""

import gzip
import hashlib
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from _helpers.idx_files import STEMS, idx_bytes, make_idx_dir, write_idx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dropkit.lab import data
from dropkit.lab.data import DataError

FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def no_system_data(tmp_path, monkeypatch):
    """Hide the machine's data sets: empty system root, empty home, no $DROPKIT_DATA."""
    monkeypatch.setattr(data, "SYSTEM_ROOT", tmp_path / "system")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DROPKIT_DATA", raising=False)


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip(tmp_path, gz):
    array = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    out = data.read_idx(write_idx(tmp_path / "x", array, gz=gz), 0x803)
    assert out.shape == (2, 3, 5) and np.array_equal(out, array)


def test_wrong_magic(tmp_path):
    path = write_idx(tmp_path / "labels", np.zeros(4, np.uint8), magic=0x00000803)
    with pytest.raises(DataError, match=re.escape("magic number 0x00000803, expected 0x00000801")):
        data.read_idx(path, 0x801)


def test_not_an_idx_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not IDX")
    with pytest.raises(DataError, match="is not an IDX file"):
        data.read_idx(path)


def test_truncated_data(tmp_path):
    path = tmp_path / "images"
    path.write_bytes(idx_bytes(np.zeros((3, 4, 4), np.uint8))[:-5])
    with pytest.raises(DataError, match=r"is truncated: 43 data bytes, dimensions 3x4x4 need 48"):
        data.read_idx(path, 0x803)


def test_truncated_header(tmp_path):
    path = tmp_path / "images"
    path.write_bytes(idx_bytes(np.zeros((3, 4, 4), np.uint8))[:9])
    with pytest.raises(DataError, match="truncated: 9 bytes, its header alone needs 16"):
        data.read_idx(path, 0x803)


def test_truncated_gzip_stream(tmp_path):
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((30, 4, 4), np.uint8)))[:-12])
    with pytest.raises(DataError, match=f"cannot read {re.escape(str(path))}"):
        data.read_idx(path, 0x803)


def test_corrupt_gzip_stream(tmp_path):
    path = tmp_path / "images.gz"
    packed = bytearray(gzip.compress(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()))
    packed[12:16] = bytes(4)  # header intact, deflate block broken: zlib.error, not OSError
    path.write_bytes(bytes(packed))
    with pytest.raises(DataError, match=f"cannot read {re.escape(str(path))}"):
        data.read_idx(path, 0x803)


def test_mismatched_counts(tmp_path):
    directory = make_idx_dir(tmp_path / "d")
    write_idx(directory / (STEMS["test_labels"] + ".gz"), np.zeros(19, np.uint8))
    with pytest.raises(DataError, match="test images and labels disagree: 20 images, 19 labels"):
        data.load("mnist", data_dir=directory)


def test_missing_directory(tmp_path):
    with pytest.raises(DataError, match=f"data directory not found: {re.escape(str(tmp_path / 'nope'))}"):
        data.load("fashion-mnist", data_dir=tmp_path / "nope")


def test_directory_without_files_names_the_search(tmp_path, no_system_data):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="mnist IDX files not found .*pass --data-dir DIR or --download"):
        data.load("mnist", data_dir=tmp_path / "empty")


def test_load_standardises_and_keeps_labels(tmp_path):
    directory = make_idx_dir(tmp_path / "d", gz=False, side=4)
    ds = data.load("idx", data_dir=directory)  # a custom folder: (Fashion-)MNIST must be 28x28
    assert ds.x_train.shape == (60, 16) and ds.x_test.shape == (20, 16)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert abs(ds.x_train.mean().item()) < 1e-5 and abs(ds.x_train.std().item() - 1) < 1e-5
    raw = data.read_idx(directory / STEMS["train_labels"], 0x801)
    assert torch.equal(ds.y_train, torch.from_numpy(raw.astype(np.int64)))
    assert ds.source == str(directory)


def test_standardising_a_constant_data_set_gives_no_inf_or_nan():
    train = np.full((5, 2, 2), 7, dtype=np.uint8)  # every pixel of every image the same: std 0
    x_train, x_test = data._standardise(train, np.arange(8, dtype=np.uint8).reshape(2, 2, 2))
    assert torch.isfinite(x_train).all() and torch.isfinite(x_test).all()
    assert torch.equal(x_train, torch.zeros(5, 4))  # centred, and a std of 0 divides by 1
    assert torch.equal(x_test[0], torch.tensor([-7.0, -6.0, -5.0, -4.0]))


def test_search_order(tmp_path, monkeypatch, no_system_data):
    env = make_idx_dir(tmp_path / "env" / "mnist", n_train=30)
    explicit = make_idx_dir(tmp_path / "explicit" / "mnist", n_train=40)
    monkeypatch.setenv("DROPKIT_DATA", str(tmp_path / "env"))
    assert data.find_idx_dir("mnist") == env
    assert data.find_idx_dir("mnist", data_dir=tmp_path / "explicit") == explicit  # data_dir/<name>
    assert data.find_idx_dir("mnist", data_dir=explicit) == explicit  # the files directly in data_dir
    assert data.find_idx_dir("fashion-mnist") is None
    cache = make_idx_dir(tmp_path / "home" / ".cache" / "dropkit" / "fashion-mnist")
    assert data.find_idx_dir("fashion-mnist") == cache


def test_auto_falls_back_to_digits_with_a_notice(no_system_data):
    ds = data.load("auto")
    assert ds.name == "digits" and ds.x_train.shape == (1438, 64) and ds.x_test.shape == (359, 64)
    assert "apt-get install dataset-fashion-mnist" in ds.notice


def test_digits_split_is_fixed():
    a, b = data.load("digits"), data.load("digits")
    assert torch.equal(a.x_test, b.x_test) and a.notice is None
    assert set(a.y_train.tolist()) == set(range(10))


def test_unknown_dataset():
    with pytest.raises(DataError, match="dataset must be one of auto, fashion-mnist, mnist, digits, idx, got 'cifar'"):
        data.load("cifar")


def _mirror(tmp_path):
    """A local 'mirror' (file:// URL) holding IDX files, and their true sha256 sums."""
    mirror = make_idx_dir(tmp_path / "mirror")
    sums = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in mirror.iterdir()}
    return mirror.as_uri() + "/", sums


def test_download_checks_sha256(tmp_path, monkeypatch):
    url, sums = _mirror(tmp_path)
    sums["t10k-labels-idx1-ubyte.gz"] = "0" * 64
    monkeypatch.setitem(data.SHA256, "mnist", sums)
    with pytest.raises(
        DataError, match=r"t10k-labels-idx1-ubyte.gz has sha256 [0-9a-f]{64}, expected 0{64}; not saved"
    ):
        data.download("mnist", tmp_path / "target", mirror=url)
    names = sorted(p.name for p in (tmp_path / "target" / "mnist").iterdir())
    assert "t10k-labels-idx1-ubyte.gz" not in names and not any(n.startswith(".") for n in names)


def test_download_saves_verified_files(tmp_path, monkeypatch):
    url, sums = _mirror(tmp_path)
    monkeypatch.setitem(data.SHA256, "mnist", sums)
    monkeypatch.setitem(data.MIRRORS, "mnist", url)
    ds = data.load("mnist", data_dir=tmp_path / "target", download_missing=True)
    assert ds.source == str(tmp_path / "target" / "mnist") and len(ds.y_test) == 20


def test_download_failure_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(data.SHA256, "mnist", {"train-images-idx3-ubyte.gz": "0" * 64})
    with pytest.raises(DataError, match="cannot download file://"):
        data.download("mnist", tmp_path, mirror=(tmp_path / "nothing").as_uri() + "/")


def test_the_official_sums_are_well_formed():
    for name, sums in data.SHA256.items():
        assert sorted(sums) == sorted(f"{stem}.gz" for stem in STEMS.values()), name
        assert all(re.fullmatch("[0-9a-f]{64}", s) for s in sums.values())


@pytest.mark.skipif(
    not FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed (/usr/share/datasets/fashion-mnist)"
)
def test_real_fashion_mnist():
    ds = data.load("fashion-mnist")
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert torch.equal(torch.bincount(ds.y_test), torch.full((10,), 1000))
    assert torch.equal(torch.bincount(ds.y_train), torch.full((10,), 6000))
    x, y = data.load_test_tensors("fashion-mnist")
    assert torch.equal(x, ds.x_test) and torch.equal(y, ds.y_test)
    assert data.load("auto").name == "fashion-mnist"


def _set_byte(path: Path, index: int, value: int) -> None:
    """Rewrite one byte of the (gzip or raw) IDX file's contents."""
    raw = bytearray(gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes())
    raw[index] = value
    path.write_bytes(gzip.compress(bytes(raw)) if path.suffix == ".gz" else bytes(raw))


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_a_label_outside_the_ten_classes_is_refused(tmp_path, name):
    directory = make_idx_dir(tmp_path / "d")
    path = directory / (STEMS["train_labels"] + ".gz")
    _set_byte(path, 8 + 3, 200)  # the 4th label (after the 8-byte header)
    with pytest.raises(
        DataError, match=f"^{re.escape(str(path))}: label 200 at index 3 \\(byte 11\\) is outside {name}'s classes 0-9$"
    ):
        data.load(name, data_dir=directory)
    assert data.load(name, data_dir=make_idx_dir(tmp_path / "ok")).n_classes == 10


def test_images_must_be_28x28_for_mnist(tmp_path):
    directory = make_idx_dir(tmp_path / "d", side=8)
    path = directory / (STEMS["train_images"] + ".gz")
    with pytest.raises(
        DataError, match=f"^{re.escape(str(path))}: images of 8x8 \\(header bytes 8-15\\), mnist's are 28x28$"
    ):
        data.load("mnist", data_dir=directory)
    assert data.load("idx", data_dir=directory).n_features == 64  # a folder of one's own may hold any size


def test_test_images_must_match_the_train_images(tmp_path):
    directory = make_idx_dir(tmp_path / "d", side=8)
    write_idx(directory / (STEMS["test_images"] + ".gz"), np.zeros((20, 8, 7), np.uint8))
    with pytest.raises(
        DataError, match=r"t10k-images-idx3-ubyte.gz: images of 8x7 \(header bytes 8-15\), the train images are 8x8$"
    ):
        data.load("idx", data_dir=directory)


def test_a_custom_folder_takes_its_classes_from_the_train_split(tmp_path):
    directory = make_idx_dir(tmp_path / "d", side=4)
    write_idx(directory / (STEMS["train_labels"] + ".gz"), np.arange(60, dtype=np.uint8) % 3 * 7)  # classes 0, 7, 14
    write_idx(directory / (STEMS["test_labels"] + ".gz"), np.full(20, 14, np.uint8))
    ds = data.load("idx", data_dir=directory)
    assert ds.n_classes == 15 and ds.name == "idx"  # outputs indexed by label, up to the largest
    labels = np.full(20, 7, np.uint8)
    labels[5] = 3  # no training example has label 3
    path = write_idx(directory / (STEMS["test_labels"] + ".gz"), labels)
    with pytest.raises(
        DataError,
        match=f"^{re.escape(str(path))}: label 3 at index 5 \\(byte 13\\) is outside the train "
        "split's classes \\(0, 7, 14\\)$",
    ):
        data.load("idx", data_dir=directory)
    with pytest.raises(DataError, match="^dataset 'idx' reads a folder of your own IDX files: pass --data-dir DIR$"):
        data.load("idx")


def test_an_empty_split_is_refused(tmp_path):
    directory = make_idx_dir(tmp_path / "d")
    write_idx(directory / (STEMS["test_images"] + ".gz"), np.zeros((0, 28, 28), np.uint8))
    write_idx(directory / (STEMS["test_labels"] + ".gz"), np.zeros(0, np.uint8))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: no images \(its header gives a count of 0\)$"):
        data.load("mnist", data_dir=directory)


_VALID = {}


def _valid_files(gz: bool) -> dict[str, bytes]:
    """The four files of a small valid MNIST-shaped set, built once per format."""
    if gz not in _VALID:
        with tempfile.TemporaryDirectory() as tmp:
            directory = make_idx_dir(Path(tmp), n_train=6, n_test=3, gz=gz)
            _VALID[gz] = {p.name: p.read_bytes() for p in directory.iterdir()}
    return _VALID[gz]


_MUTATION = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 10**5), st.integers(0, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10**5), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10**5), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, 10**5), st.integers(1, 64)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    gz=st.booleans(),
    stem=st.sampled_from(sorted(STEMS.values())),
    mutations=st.lists(_MUTATION, min_size=1, max_size=4),
    before_gzip=st.booleans(),
)
def test_fuzzed_idx_files_give_a_data_set_or_a_data_error(tmp_path_factory, gz, stem, mutations, before_gzip):
    """Random mutations of valid files (of the bytes on disk, or of the IDX bytes inside the gzip) never escape as
    another exception: the loader either returns a valid data set or raises DataError."""
    directory = tmp_path_factory.mktemp("fuzz")
    files = dict(_valid_files(gz))
    name = stem + (".gz" if gz else "")
    content = bytearray(gzip.decompress(files[name]) if gz and before_gzip else files[name])
    for kind, at, value in mutations:
        at = at % (len(content) + 1)
        if kind == "set" and at < len(content):
            content[at] = value
        elif kind == "truncate":
            del content[at:]
        elif kind == "insert":
            content.insert(at, value)
        elif kind == "delete":
            del content[at : at + value]
    files[name] = gzip.compress(bytes(content)) if gz and before_gzip else bytes(content)
    for file_name, blob in files.items():
        (directory / file_name).write_bytes(blob)
    try:
        ds = data.load("mnist", data_dir=directory)
    except DataError as e:
        assert "\n" not in str(e)
        return
    assert ds.x_train.shape[1] == 784 and len(ds.x_train) == len(ds.y_train) and len(ds.x_test) == len(ds.y_test)
    assert int(ds.y_train.max()) < 10 and int(ds.y_test.max()) < 10 and ds.n_classes == 10
