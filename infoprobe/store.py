"""Per-layer activation storage with bounded memory.

An :class:`ActivationStore` keeps one growing array per key (a recorded layer). Rows arrive in
batches and are copied, with a single ``copy_`` per batch, into preallocated chunks; nothing is
kept as a Python list of batch tensors to concatenate later. Chunks grow geometrically (each new
chunk as large as everything before it, at most ``MAX_CHUNK_BYTES``), so a layer costs a
logarithmic number of allocations.

With ``max_samples`` set, each layer's first chunk is allocated at its final size at once (no
merging later); pass the number of samples you will record when you know it.

Memory accounting is by *reserved* chunk capacity, in bytes of the storage dtype. When a new
chunk would exceed ``memory_budget``, that layer's further rows are appended to a ``.npy`` file
(plain file writes, so written pages do not count towards the process' resident memory) and are
read back memory-mapped. A layer therefore consists of an in-memory prefix and an on-disk suffix.
Spill files live in a fresh temporary folder (inside ``spill_dir`` when given) that is removed by
:meth:`ActivationStore.close` or when the store is garbage collected.

Reading a key returns a ``(n_rows, *feature_shape)`` tensor: a view of the store's own buffer
when the layer is in memory (several chunks are first merged into one, once), a copy-on-write
memory map when it is on disk, or the concatenation of both when it was split.
"""

from __future__ import annotations

import math
import mmap
import os
import re
import shutil
import struct
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from infoprobe.errors import InfoprobeError

__all__ = ["MAX_CHUNK_BYTES", "ActivationStore", "LayerBuffer", "parse_bytes"]

#: Largest single in-memory chunk; bigger layers get several chunks (merged on first read).
MAX_CHUNK_BYTES = 16 * 2**20

_UNITS = {
    "": 1, "b": 1,
    "k": 2**10, "kb": 2**10, "kib": 2**10,
    "m": 2**20, "mb": 2**20, "mib": 2**20,
    "g": 2**30, "gb": 2**30, "gib": 2**30,
    "t": 2**40, "tb": 2**40, "tib": 2**40,
}

_STORABLE = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}

# CPU arrays at least this large get an anonymous memory map of their own (see _allocate).
_OWN_MAPPING_BYTES = 2**20

# Fixed size of the .npy header we write, so that it can be rewritten in place as rows arrive.
_NPY_HEADER_BYTES = 256


def parse_bytes(size: int | float | str | None) -> int | None:
    """Parse a memory size: an int (bytes), ``"512MB"``, ``"1.5 GiB"``, ``"256k"``; ``None`` = unlimited.

    KB/MB/GB and KiB/MiB/GiB both mean powers of 1024, as is usual for memory.
    """
    if size is None:
        return None
    if isinstance(size, bool):
        raise InfoprobeError(f"Expected a memory size such as 536870912 or '512MB', got {size!r}")
    if isinstance(size, (int, float)):
        if size < 0 or not math.isfinite(size):
            raise InfoprobeError(f"Expected a non-negative memory size in bytes, got {size!r}")
        return int(size)
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(size))
    if match is None or match.group(2).lower() not in _UNITS:
        raise InfoprobeError(
            f"Expected a memory size such as '512MB', '1GB' or a number of bytes, got {size!r}"
        )
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """A version-1.0 ``.npy`` header padded with spaces to exactly ``_NPY_HEADER_BYTES``."""
    descr = np.lib.format.dtype_to_descr(dtype)
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {tuple(shape)!r}, }}"
    room = _NPY_HEADER_BYTES - 10
    if len(text) + 1 > room:
        raise InfoprobeError(f"Cannot spill an array of shape {shape} (header too long)")
    body = (text + " " * (room - len(text) - 1) + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", room) + body


def _allocate(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    """An uninitialised tensor; large CPU ones in their own anonymous memory map.

    The process' heap keeps freed blocks resident when they are fragmented by the model's own
    temporaries; a mapping of its own is returned to the system as soon as the tensor dies, and
    its pages only become resident when written.
    """
    nbytes = math.prod(shape) * dtype.itemsize
    if device.type != "cpu" or nbytes < _OWN_MAPPING_BYTES:
        return torch.empty(shape, dtype=dtype, device=device)
    return torch.frombuffer(mmap.mmap(-1, nbytes), dtype=dtype).view(shape)


def _remove_folder(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


class LayerBuffer:
    """Rows of one key: in-memory chunks followed by an optional spill file.

    Obtained from :meth:`ActivationStore.create`; :meth:`append` is the recording hot path.
    """

    __slots__ = (
        "_chunks", "_disk_rows", "_fill", "_free", "_mem_rows", "_np_dtype", "_path", "_row_bytes",
        "_stale_header", "_store", "_writer", "feature_shape", "key",
    )

    def __init__(self, store: ActivationStore, key: str, feature_shape: tuple[int, ...]) -> None:
        self._store = store
        self.key = key
        self.feature_shape = tuple(int(s) for s in feature_shape)
        self._row_bytes = math.prod(self.feature_shape) * store.dtype.itemsize
        self._np_dtype = np.dtype(_STORABLE[store.dtype])
        self._chunks: list[Tensor] = []
        self._fill = 0  # rows used in the last chunk
        self._free = 0  # rows still free in the last chunk
        self._mem_rows = 0
        self._disk_rows = 0
        self._writer: Any = None
        self._path: Path | None = None
        self._stale_header = False

    @property
    def n_rows(self) -> int:
        """Rows stored so far (memory and disk)."""
        return self._mem_rows + self._disk_rows

    @property
    def spilled(self) -> bool:
        """Whether some rows of this key live on disk."""
        return self._writer is not None

    @property
    def memory_bytes(self) -> int:
        """Reserved in-memory capacity of this key, in bytes."""
        return sum(c.shape[0] for c in self._chunks) * self._row_bytes

    @property
    def disk_bytes(self) -> int:
        return self._disk_rows * self._row_bytes

    def append(self, batch: Tensor) -> None:
        """Copy ``batch`` (``(n, *feature_shape)``, any device and float dtype) into the store.

        Rows beyond the store's ``max_samples`` are dropped.
        """
        n = batch.shape[0]
        cap = self._store.max_samples
        if cap is not None:
            room = cap - self._mem_rows - self._disk_rows
            if room <= 0:
                return
            if n > room:
                batch, n = batch[:room], room
        if batch.shape[1:] != self.feature_shape:
            raise InfoprobeError(
                f"Expected rows of shape {self.feature_shape} for layer '{self.key}' (as in its "
                f"first batch), got {tuple(batch.shape[1:])}; a layer must keep its shape "
                "across batches"
            )
        batch = batch.detach()
        start = 0
        while start < n:
            if self._writer is not None:
                self._write(batch[start:] if start else batch)
                return
            if self._free == 0 and not self._new_chunk(n - start):
                self._open_spill_file()
                continue
            k = min(self._free, n - start)
            chunk = self._chunks[-1]
            chunk[self._fill:self._fill + k].copy_(batch[start:start + k] if k != n else batch)
            self._fill += k
            self._free -= k
            self._mem_rows += k
            start += k

    def read(self) -> Tensor:
        """All rows as one ``(n_rows, *feature_shape)`` tensor (see the module docstring)."""
        memory = self._memory_part()
        if self._writer is None:
            return memory
        disk = self._disk_part()
        if self._mem_rows == 0:
            return disk
        with torch.inference_mode(False):
            both = _allocate((self.n_rows, *self.feature_shape), memory.dtype, memory.device)
            return torch.cat([memory, disk.to(memory.device)], out=both)

    # -- internals -------------------------------------------------------------------------------

    def _new_chunk(self, needed: int) -> bool:
        store = self._store
        have = sum(c.shape[0] for c in self._chunks)
        if store.max_samples is not None:
            # The final size is known: one exact allocation (pages are only touched when filled).
            rows = store.max_samples - self._mem_rows
        else:
            rows = max(needed, have, 1)
            if self._row_bytes:
                rows = min(rows, max(needed, MAX_CHUNK_BYTES // self._row_bytes))
        if store.memory_budget is not None and self._row_bytes:
            rows = min(rows, (store.memory_budget - store.memory_bytes) // self._row_bytes)
        if rows <= 0:
            return False
        # Normal (not inference-mode) tensors, so that what we return is usable everywhere.
        with torch.inference_mode(False):
            chunk = _allocate((rows, *self.feature_shape), store.dtype, store.device)
        self._chunks.append(chunk)
        store._reserved += rows * self._row_bytes
        self._fill, self._free = 0, rows
        return True

    def _memory_part(self) -> Tensor:
        if not self._chunks:
            with torch.inference_mode(False):
                return torch.empty((0, *self.feature_shape), dtype=self._store.dtype,
                                   device=self._store.device)
        if len(self._chunks) > 1:
            # Merge once into an exactly sized array; reading again is then free.
            parts = [*self._chunks[:-1], self._chunks[-1][:self._fill]]
            with torch.inference_mode(False):
                merged = _allocate((self._mem_rows, *self.feature_shape), self._store.dtype,
                                   self._store.device)
                torch.cat(parts, out=merged)
            self._store._reserved += merged.shape[0] * self._row_bytes - self.memory_bytes
            self._chunks = [merged]
            self._fill, self._free = merged.shape[0], 0
        return self._chunks[0][:self._mem_rows]

    def _open_spill_file(self) -> None:
        self._path = self._store._new_spill_path()
        self._writer = open(self._path, "wb")  # noqa: SIM115 - kept open while recording
        self._writer.write(_npy_header(self._np_dtype, (0, *self.feature_shape)))

    def _write(self, rows: Tensor) -> None:
        array = rows.to(device="cpu", dtype=self._store.dtype).contiguous().numpy()
        self._writer.write(array.reshape(-1).view(np.uint8).data)
        self._disk_rows += rows.shape[0]
        self._stale_header = True

    def _disk_part(self) -> Tensor:
        assert self._writer is not None and self._path is not None
        if self._stale_header:
            self._writer.flush()
            os.pwrite(self._writer.fileno(),
                      _npy_header(self._np_dtype, (self._disk_rows, *self.feature_shape)), 0)
            self._stale_header = False
        if self._disk_rows == 0:
            return torch.empty((0, *self.feature_shape), dtype=self._store.dtype)
        array = np.load(self._path, mmap_mode="c")
        return torch.from_numpy(array)

    def _close(self) -> None:
        if self._writer is not None and not self._writer.closed:
            self._writer.close()
        self._chunks = []
        self._free = self._fill = 0


class ActivationStore:
    """Growing ``(n_rows, *feature_shape)`` arrays by key, in memory up to a budget, then on disk.

    Parameters
    ----------
    memory_budget:
        Total in-memory capacity for all keys: bytes, or a string like ``"512MB"``; ``None`` for
        no limit, ``0`` to keep everything on disk.
    spill_dir:
        Folder in which a temporary sub-folder for the spill files is created (default: the
        system's temporary folder). The sub-folder is removed by :meth:`close`.
    max_samples:
        Keep at most this many rows per key; further rows are dropped.
    dtype:
        Storage dtype: ``torch.float32`` (default), ``torch.float16`` (half the bytes) or
        ``torch.float64``. Incoming rows are converted.
    device:
        Device of the in-memory arrays.
    """

    def __init__(
        self,
        *,
        memory_budget: int | str | None = "512MB",
        spill_dir: str | os.PathLike[str] | None = None,
        max_samples: int | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        if dtype not in _STORABLE:
            raise InfoprobeError(
                f"Expected a storage dtype among float16, float32, float64, got {dtype}; "
                "pass dtype=torch.float16 to halve the memory"
            )
        if max_samples is not None and (isinstance(max_samples, bool) or max_samples < 0):
            raise InfoprobeError(f"Expected max_samples to be None or >= 0, got {max_samples!r}")
        self.memory_budget = parse_bytes(memory_budget)
        self.spill_dir = None if spill_dir is None else Path(spill_dir)
        self.max_samples = max_samples
        self.dtype = dtype
        self.device = torch.device(device)
        self._layers: dict[str, LayerBuffer] = {}
        self._reserved = 0
        self._folder: str | None = None
        self._n_files = 0
        self._finalizer: weakref.finalize | None = None
        self._closed = False

    # -- writing ---------------------------------------------------------------------------------

    def create(self, key: str, feature_shape: tuple[int, ...]) -> LayerBuffer:
        """Start a new key whose rows have ``feature_shape``; returns its buffer."""
        self._check_open()
        if key in self._layers:
            raise InfoprobeError(f"Expected a new key, but '{key}' is already in the store")
        buffer = LayerBuffer(self, key, feature_shape)
        self._layers[key] = buffer
        return buffer

    def append(self, key: str, batch: Tensor) -> None:
        """Append ``batch`` (rows along dim 0) to ``key``, creating the key on first use."""
        buffer = self._layers.get(key)
        if buffer is None:
            buffer = self.create(key, tuple(batch.shape[1:]))
        buffer.append(batch)

    # -- reading ---------------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Tensor:
        self._check_open()
        return self.buffer(key).read()

    def buffer(self, key: str) -> LayerBuffer:
        """The buffer of ``key`` (row count, shape, spill state)."""
        try:
            return self._layers[key]
        except KeyError:
            known = ", ".join(repr(k) for k in list(self._layers)[:20])
            raise InfoprobeError(
                f"Expected one of the stored keys ({known}), got {key!r}"
            ) from None

    def __contains__(self, key: object) -> bool:
        return key in self._layers

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def keys(self) -> list[str]:
        return list(self._layers)

    def n_rows(self, key: str) -> int:
        return self.buffer(key).n_rows

    @property
    def memory_bytes(self) -> int:
        """Reserved in-memory capacity over all keys, in bytes (what the budget limits)."""
        return self._reserved

    @property
    def disk_bytes(self) -> int:
        """Bytes of rows written to spill files."""
        return sum(b.disk_bytes for b in self._layers.values())

    @property
    def spill_folder(self) -> Path | None:
        """The temporary folder holding spill files, once something spilled."""
        return None if self._folder is None else Path(self._folder)

    # -- lifetime --------------------------------------------------------------------------------

    def close(self) -> None:
        """Free the in-memory arrays and delete the spill files. Tensors already read stay valid."""
        for buffer in self._layers.values():
            buffer._close()
        self._layers = {}
        self._reserved = 0
        if self._finalizer is not None:
            self._finalizer()
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> ActivationStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise InfoprobeError("This store was closed; its activations were freed. Record again.")

    def _new_spill_path(self) -> Path:
        if self._folder is None:
            if self.spill_dir is not None:
                self.spill_dir.mkdir(parents=True, exist_ok=True)
            self._folder = tempfile.mkdtemp(prefix="infoprobe-spill-",
                                            dir=None if self.spill_dir is None else str(self.spill_dir))
            self._finalizer = weakref.finalize(self, _remove_folder, self._folder)
        self._n_files += 1
        return Path(self._folder) / f"layer{self._n_files:04d}.npy"
