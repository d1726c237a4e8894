"""Datasets as float32 images in [0, 1], shaped N×C×H×W, with integer labels.

``load_dataset(name, split=...)`` returns an :class:`ImageData`, a map-style torch
``Dataset`` (``data[i] -> (image, label)``) that also exposes the whole ``images`` and
``labels`` tensors.

- ``digits``: scikit-learn's bundled 8×8 digits (1,797 images, 1×8×8, pixel value / 16).
  Fixed stratified split: 1,437 train / 360 test (``train_test_split(test_size=360,
  stratify=labels, random_state=0)``). Needs no file and no network; the default.
- ``mnist``: the standard IDX files (``train-images-idx3-ubyte[.gz]`` …) or an ``.npz``
  with ``x_train, y_train, x_test, y_test`` (N×28×28 uint8), in ``root``, ``root/mnist``
  or ``root/MNIST/raw``. 1×28×28, pixel / 255.
- ``cifar10``: the standard python batches (``cifar-10-batches-py/``) or the same ``.npz``
  layout (N×32×32×3 uint8, HWC), in ``root`` or ``root/cifar10``. 3×32×32, pixel / 255.
- ``synthetic``: a 10-class Gaussian mixture on 1×8×8 with a known structure, for tests
  and examples (real-valued, not bounded to [0, 1]); see :func:`gaussian_samples` for
  samples whose entropy and mutual information are known in closed form.

``root`` defaults to ``$INFOPROBE_DATA``, else ``$XDG_CACHE_HOME/infoprobe`` (``~/.cache``).
With ``download=True`` missing MNIST / CIFAR-10 files are fetched from the public mirrors and
verified by their MD5 checksums; nothing is ever downloaded otherwise.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from infoprobe.errors import InfoprobeError

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "GaussianSamples",
    "ImageData",
    "dataset_spec",
    "default_root",
    "gaussian_samples",
    "load_dataset",
    "subset_indices",
]


def subset_indices(total: int, n: int, *, seed: int = 0) -> Tensor:
    """The sorted indices of a seeded random subset of ``n`` of ``total`` items (all if ``n >= total``).

    One definition for every seeded subset (``ImageData.subset``, the trainer's ``subset``), so the
    images a model was trained on can be found again from its checkpoint's size and seed.
    """
    if n >= total:
        return torch.arange(total)
    return torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n].sort().values


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is, in one place: image shape (C, H, W), classes, split sizes, and the
    number of distinct pixel values (None for real-valued data). Models read their input shape
    here."""

    name: str
    shape: tuple[int, int, int]
    n_classes: int
    sizes: dict[str, int]
    levels: int | None


DATASET_SPECS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec("digits", (1, 8, 8), 10, {"train": 1437, "test": 360}, 17),
    "mnist": DatasetSpec("mnist", (1, 28, 28), 10, {"train": 60000, "test": 10000}, 256),
    "cifar10": DatasetSpec("cifar10", (3, 32, 32), 10, {"train": 50000, "test": 10000}, 256),
    "synthetic": DatasetSpec("synthetic", (1, 8, 8), 10, {"train": 1000, "test": 200}, None),
}
DATASETS = tuple(DATASET_SPECS)


def dataset_spec(name: str) -> DatasetSpec:
    """The `DatasetSpec` of ``name`` (digits, mnist, cifar10, synthetic)."""
    if name not in DATASET_SPECS:
        raise InfoprobeError(f"Unknown dataset {name!r}; expected one of {', '.join(DATASETS)}.", parameter="dataset")
    return DATASET_SPECS[name]
SPLITS = ("train", "test")

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class ImageData(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Images (float32, N×C×H×W) and integer labels (int64, N) of one dataset split."""

    images: Tensor
    labels: Tensor
    name: str
    split: str
    classes: tuple[str, ...] = field(default=())
    preprocessing: str = "pixel values scaled to [0, 1]"

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.labels[index]

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    def subset(self, n: int, *, seed: int = 0) -> ImageData:
        """A seeded random subset of ``n`` samples (all of them if ``n >= len(self)``)."""
        if n >= len(self):
            return self
        idx = subset_indices(len(self), n, seed=seed)
        return ImageData(self.images[idx], self.labels[idx], self.name, self.split,
                         self.classes, self.preprocessing)

    def describe(self) -> dict[str, object]:
        """JSON-able description, as stored in checkpoints and reports."""
        return {"name": self.name, "split": self.split, "n": len(self),
                "shape": list(self.sample_shape), "preprocessing": self.preprocessing}


def default_root() -> Path:
    """``$INFOPROBE_DATA``, else the user cache folder ``$XDG_CACHE_HOME/infoprobe``."""
    if os.environ.get("INFOPROBE_DATA"):
        return Path(os.environ["INFOPROBE_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "infoprobe"


def load_dataset(
    name: str,
    *,
    split: str = "train",
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> ImageData:
    """Load one split of a dataset as float32 images in [0, 1] (N×C×H×W) and int64 labels."""
    if name not in DATASETS:
        raise InfoprobeError(f"Unknown dataset {name!r}; expected one of {', '.join(DATASETS)}.")
    if split not in SPLITS:
        raise InfoprobeError(f"Unknown split {split!r} for dataset {name!r}; expected 'train' or 'test'.")
    if name == "digits":
        return _load_digits(split)
    if name == "synthetic":
        return _load_synthetic(split)
    base = Path(root).expanduser() if root is not None else default_root()
    if name == "mnist":
        return _load_mnist(base, split, download)
    return _load_cifar10(base, split, download)


# --- digits -----------------------------------------------------------------------------


def _load_digits(split: str) -> ImageData:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = bunch.images.astype(np.float32) / 16.0
    labels = bunch.target.astype(np.int64)
    idx_train, idx_test = train_test_split(
        np.arange(len(labels)), test_size=360, stratify=labels, random_state=0
    )
    idx = np.sort(idx_train if split == "train" else idx_test)
    return ImageData(
        torch.from_numpy(images[idx][:, None]), torch.from_numpy(labels[idx]), "digits", split,
        tuple(str(i) for i in range(10)), "pixel value / 16",
    )


# --- synthetic ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GaussianSamples:
    """Samples of a pair of jointly Gaussian vectors with their exact information quantities (nats).

    ``x`` and ``y`` are N×d with unit variances and correlation ``rho`` between ``x[:, i]`` and
    ``y[:, i]``; ``entropy_x`` = 0.5·d·log(2πe), ``mutual_information`` = −0.5·d·log(1 − ρ²).
    """

    x: np.ndarray
    y: np.ndarray
    rho: float
    entropy_x: float
    mutual_information: float


def gaussian_samples(n: int, *, d: int = 1, rho: float = 0.0, seed: int = 0) -> GaussianSamples:
    """Draw ``n`` pairs of d-dimensional standard Gaussians correlated coordinate-wise by ``rho``."""
    if not -1.0 < rho < 1.0:
        raise InfoprobeError(f"Expected a correlation -1 < rho < 1, got {rho}.")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = rho * x + math.sqrt(1.0 - rho**2) * rng.standard_normal((n, d))
    return GaussianSamples(
        x, y, rho, 0.5 * d * math.log(2 * math.pi * math.e), -0.5 * d * math.log(1.0 - rho**2)
    )


def _load_synthetic(split: str) -> ImageData:
    """10-class Gaussian mixture on 1×8×8: class means on a random orthonormal frame, scaled by 3."""
    rng = np.random.default_rng(12345)
    means = np.linalg.qr(rng.standard_normal((64, 10)))[0].T * 3.0
    n = DATASET_SPECS["synthetic"].sizes[split]
    rng = np.random.default_rng(0 if split == "train" else 1)
    labels = rng.integers(0, 10, size=n)
    x = means[labels] + rng.standard_normal((n, 64))
    return ImageData(
        torch.from_numpy(x.astype(np.float32).reshape(n, *DATASET_SPECS["synthetic"].shape)),
        torch.from_numpy(labels.astype(np.int64)), "synthetic", split,
        tuple(str(i) for i in range(10)), "none (real-valued Gaussian mixture)",
    )


# --- MNIST --------------------------------------------------------------------------------


def _read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (optionally gzipped): magic 0x0000, dtype code, ndim, big-endian sizes."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise InfoprobeError(f"{path} is not an IDX file (bad magic number); re-download it.")
    dtypes: dict[int, np.dtype[Any]] = {
        code: np.dtype(name)
        for code, name in {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}.items()
    }
    if raw[2] not in dtypes:
        raise InfoprobeError(f"{path}: unknown IDX data type code {raw[2]:#x}.")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=dtypes[raw[2]], offset=4 + 4 * ndim)
    if data.size != math.prod(shape):
        raise InfoprobeError(
            f"{path} is truncated: header says {shape}, found {data.size} values; re-download it."
        )
    return data.reshape(shape)


def _find(folders: list[Path], names: list[str]) -> Path | None:
    for folder in folders:
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def _from_npz(path: Path, split: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as npz:
        keys = (f"x_{split}", f"y_{split}")
        if not all(k in npz for k in keys):
            raise InfoprobeError(
                f"{path} has arrays {sorted(npz.keys())}; expected x_train, y_train, x_test, y_test "
                f"for {name}."
            )
        return npz[keys[0]], npz[keys[1]]


def _missing(name: str, folders: list[Path], expected: str) -> InfoprobeError:
    where = ", ".join(str(f) for f in folders)
    return InfoprobeError(
        f"{name} not found: searched {where} for {expected}. Either put those files in one of "
        f"these folders (or pass root= or set $INFOPROBE_DATA), or pass download=True to fetch them.",
        parameter="download",
    )


def _load_mnist(root: Path, split: str, download: bool) -> ImageData:
    folders = [root, root / "mnist", root / "MNIST" / "raw"]
    img_name, lbl_name = MNIST_FILES[split]
    img = _find(folders, [img_name, img_name + ".gz"])
    lbl = _find(folders, [lbl_name, lbl_name + ".gz"])
    npz = _find(folders, ["mnist.npz"])
    if (img is None or lbl is None) and npz is None and download:
        target = root / "mnist"
        for fname in (img_name + ".gz", lbl_name + ".gz"):
            _download(fname, MNIST_MIRRORS, target, MNIST_MD5[fname])
        img, lbl = target / (img_name + ".gz"), target / (lbl_name + ".gz")
    if img is not None and lbl is not None:
        x, y = _read_idx(img), _read_idx(lbl)
    elif npz is not None:
        x, y = _from_npz(npz, split, "MNIST")
    else:
        raise _missing("MNIST", folders, f"{img_name}[.gz] and {lbl_name}[.gz], or mnist.npz")
    if x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) != len(y):
        raise InfoprobeError(f"Expected MNIST images N×28×28 with N labels, got {x.shape} and {y.shape}.")
    images = torch.from_numpy(x.astype(np.float32) / 255.0)[:, None]
    return ImageData(images, torch.from_numpy(y.astype(np.int64)), "mnist", split,
                     tuple(str(i) for i in range(10)), "pixel / 255")


# --- CIFAR-10 -----------------------------------------------------------------------------


def _load_cifar10(root: Path, split: str, download: bool) -> ImageData:
    folders = [root, root / "cifar10"]
    batches_dir = next((f / "cifar-10-batches-py" for f in folders
                        if (f / "cifar-10-batches-py").is_dir()), None)
    npz = _find(folders, ["cifar10.npz"])
    if batches_dir is None and npz is None and download:
        archive = _download(CIFAR10_ARCHIVE, CIFAR10_MIRRORS, root / "cifar10", CIFAR10_MD5)
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(root / "cifar10", filter="data")
        batches_dir = root / "cifar10" / "cifar-10-batches-py"
    if batches_dir is not None:
        names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        xs, ys = [], []
        for name in names:
            path = batches_dir / name
            if not path.is_file():
                raise _missing("CIFAR-10", [batches_dir], name)
            with open(path, "rb") as fh:
                # The official batches are pickles; only read files the user put there.
                batch = pickle.load(fh, encoding="bytes")
            xs.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(batch[b"labels"], dtype=np.int64))
        chw, y = np.concatenate(xs), np.concatenate(ys)
    elif npz is not None:
        x, y = _from_npz(npz, split, "CIFAR-10")
        if x.ndim != 4 or x.shape[1:] != (32, 32, 3):
            raise InfoprobeError(f"Expected CIFAR-10 images N×32×32×3 (HWC), got {x.shape} in {npz}.")
        chw = x.transpose(0, 3, 1, 2)
    else:
        raise _missing("CIFAR-10", folders, "cifar-10-batches-py/ or cifar10.npz")
    images = torch.from_numpy(np.ascontiguousarray(chw).astype(np.float32) / 255.0)
    return ImageData(images, torch.from_numpy(y.astype(np.int64)), "cifar10", split,
                     CIFAR10_CLASSES, "pixel / 255")


# --- download -----------------------------------------------------------------------------


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(filename: str, mirrors: tuple[str, ...], folder: Path, md5: str) -> Path:
    """Fetch ``filename`` from the first mirror that serves it with the right checksum."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / filename
    if target.is_file() and _md5(target) == md5:
        return target
    failures = []
    for mirror in mirrors:
        url = mirror + filename
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
                shutil.copyfileobj(resp, out)
            got = _md5(Path(tmp))
            if got != md5:
                failures.append(f"{url}: checksum {got} != {md5}")
                continue
            os.replace(tmp, target)
            return target
        except OSError as exc:
            failures.append(f"{url}: {exc}")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    raise InfoprobeError(f"Could not download {filename}: {'; '.join(failures)}.")
