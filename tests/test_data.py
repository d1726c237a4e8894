from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from infoprobe.data import gaussian_samples, load_dataset
from infoprobe.errors import InfoprobeError


@pytest.mark.parametrize(("split", "n"), [("train", 1437), ("test", 360)])
def test_digits_shape_range_and_split(split: str, n: int) -> None:
    data = load_dataset("digits", split=split)
    assert data.images.shape == (n, 1, 8, 8)
    assert data.images.dtype == torch.float32 and data.labels.dtype == torch.int64
    assert float(data.images.min()) == 0.0 and float(data.images.max()) == 1.0
    counts = torch.bincount(data.labels, minlength=10)
    # stratified: every class holds its share of the split within one image
    assert int(counts.max() - counts.min()) <= {1437: 7, 360: 2}[n]
    image, label = data[0]
    assert image.shape == (1, 8, 8) and int(label) == int(data.labels[0])


def test_digits_split_is_deterministic_and_disjoint() -> None:
    a, b = load_dataset("digits", split="train"), load_dataset("digits", split="train")
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    test = load_dataset("digits", split="test")
    train_rows = {tuple(r) for r in a.images.flatten(1).tolist()}
    overlap = sum(tuple(r) in train_rows for r in test.images.flatten(1).tolist())
    # sklearn's digits holds a handful of exact duplicate images; none beyond those may leak
    assert overlap <= 5


def _write_idx(path: Path, array: np.ndarray, *, compress: bool) -> None:
    code = {np.uint8: 0x08}[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in array.shape
    )
    data = header + array.tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_from_idx_files(tmp_path: Path, compress: bool) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    y = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    folder = tmp_path / "mnist"
    folder.mkdir()
    _write_idx(folder / "t10k-images-idx3-ubyte", x, compress=compress)
    _write_idx(folder / "t10k-labels-idx1-ubyte", y, compress=compress)
    data = load_dataset("mnist", split="test", root=tmp_path)
    assert data.images.shape == (5, 1, 28, 28)
    np.testing.assert_allclose(data.images[:, 0].numpy() * 255, x, atol=1e-4)
    assert data.labels.tolist() == [3, 1, 4, 1, 5]


def test_truncated_idx_file_is_reported(tmp_path: Path) -> None:
    x = np.zeros((5, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", x, compress=False)
    raw = (tmp_path / "t10k-images-idx3-ubyte").read_bytes()
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(raw[:-100])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(5, np.uint8), compress=False)
    with pytest.raises(InfoprobeError, match="truncated"):
        load_dataset("mnist", split="test", root=tmp_path)


def test_npz_layouts(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "mnist.npz", x_train=rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
             y_train=np.arange(4), x_test=np.zeros((2, 28, 28), np.uint8), y_test=np.arange(2))
    cifar = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "cifar10.npz", x_train=cifar, y_train=np.arange(3),
             x_test=cifar[:1], y_test=np.arange(1))
    mnist = load_dataset("mnist", split="train", root=tmp_path)
    assert mnist.images.shape == (4, 1, 28, 28)
    data = load_dataset("cifar10", split="train", root=tmp_path)
    assert data.images.shape == (3, 3, 32, 32)
    # HWC -> CHW: channel c of the tensor is the last axis of the array
    np.testing.assert_allclose(data.images[1, 2].numpy() * 255, cifar[1, :, :, 2], atol=1e-4)


def test_cifar_python_batches(tmp_path: Path) -> None:
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(2)
    flat = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump({b"data": flat, b"labels": [7, 2]}, fh)
    data = load_dataset("cifar10", split="test", root=tmp_path)
    assert data.labels.tolist() == [7, 2]
    np.testing.assert_allclose(data.images[0].numpy().ravel() * 255, flat[0], atol=1e-4)


def test_missing_data_message_names_folder_files_and_fixes(tmp_path: Path) -> None:
    with pytest.raises(InfoprobeError, match=r"MNIST not found: searched .*train-images-idx3-ubyte.*download=True") as info:
        load_dataset("mnist", root=tmp_path)
    assert str(tmp_path) in str(info.value)
    with pytest.raises(InfoprobeError, match=r"CIFAR-10 not found.*cifar-10-batches-py"):
        load_dataset("cifar10", root=tmp_path)


def test_default_root_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFOPROBE_DATA", str(tmp_path))
    with pytest.raises(InfoprobeError, match=str(tmp_path)):
        load_dataset("mnist")


def test_download_verifies_checksum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import infoprobe.data as data_module

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    x = np.zeros((2, 28, 28), np.uint8)
    _write_idx(mirror / "t10k-images-idx3-ubyte", x, compress=True)
    _write_idx(mirror / "t10k-labels-idx1-ubyte", np.array([1, 2], np.uint8), compress=True)
    md5 = {n: data_module._md5(mirror / n) for n in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
    monkeypatch.setattr(data_module, "MNIST_MIRRORS", (mirror.as_uri() + "/",))
    monkeypatch.setattr(data_module, "MNIST_MD5", md5)
    data = load_dataset("mnist", split="test", root=tmp_path / "root", download=True)
    assert data.labels.tolist() == [1, 2]
    # a mirror serving different bytes is refused
    monkeypatch.setattr(data_module, "MNIST_MD5", {k: "0" * 32 for k in md5})
    with pytest.raises(InfoprobeError, match="checksum"):
        load_dataset("mnist", split="test", root=tmp_path / "other", download=True)


def test_unknown_dataset_and_split() -> None:
    with pytest.raises(InfoprobeError, match="Unknown dataset 'imagenet'"):
        load_dataset("imagenet")
    with pytest.raises(InfoprobeError, match="Unknown split 'val'"):
        load_dataset("digits", split="val")


def test_subset_is_seeded() -> None:
    data = load_dataset("digits", split="test")
    a, b = data.subset(50, seed=3), data.subset(50, seed=3)
    assert len(a) == 50 and torch.equal(a.images, b.images)
    assert data.subset(10_000) is data


def test_the_trainer_and_image_data_draw_the_same_seeded_subset() -> None:
    # a checkpoint's dataset size and seed find the images it was trained on again
    from infoprobe.data import subset_indices
    from models.training import _take

    data = load_dataset("digits", split="train")
    idx = subset_indices(len(data), 100, seed=5)
    assert len(idx) == 100 and torch.equal(idx, idx.sort().values) and len(set(idx.tolist())) == 100
    assert torch.equal(data.subset(100, seed=5).images, data.images[idx])
    assert torch.equal(_take(data.images, 100, 5), data.images[idx])
    assert not torch.equal(subset_indices(len(data), 100, seed=6), idx)
    assert torch.equal(subset_indices(7, 9, seed=0), torch.arange(7))


def test_gaussian_samples_have_the_stated_correlation() -> None:
    s = gaussian_samples(20_000, d=2, rho=0.8, seed=0)
    assert s.x.shape == s.y.shape == (20_000, 2)
    assert abs(np.corrcoef(s.x[:, 0], s.y[:, 0])[0, 1] - 0.8) < 0.01
    assert s.mutual_information == pytest.approx(-math.log(1 - 0.64))
    with pytest.raises(InfoprobeError, match="correlation"):
        gaussian_samples(10, rho=1.0)


def test_synthetic_dataset() -> None:
    data = load_dataset("synthetic", split="test")
    assert data.images.shape == (200, 1, 8, 8) and data.labels.max() <= 9


@pytest.mark.data
def test_shared_mnist_and_cifar(shared_data: Path) -> None:
    mnist = load_dataset("mnist", split="test", root=shared_data)
    assert mnist.images.shape == (10_000, 1, 28, 28)
    assert mnist.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert float(mnist.images.mean()) * 255 == pytest.approx(33.791, abs=1e-3)
    cifar = load_dataset("cifar10", split="test", root=shared_data)
    assert cifar.images.shape == (1000, 3, 32, 32)
    assert cifar.labels[:4].tolist() == [3, 8, 8, 0]
