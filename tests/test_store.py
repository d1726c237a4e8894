"""ActivationStore: budgeted memory, spilling to .npy, caps and dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from infoprobe.errors import InfoprobeError
from infoprobe.store import ActivationStore, parse_bytes


def _fill(store: ActivationStore, data: dict[str, torch.Tensor], batch_sizes: list[int]) -> None:
    start = 0
    for b in batch_sizes:
        for key, value in data.items():
            store.append(key, value[start:start + b])
        start += b


def _data(n: int = 103) -> dict[str, torch.Tensor]:
    return {
        "conv": torch.randn(n, 3, 4, 5),
        "flat": torch.randn(n, 17),
        "code": torch.randn(n, 2),
        "scalar": torch.randn(n),
    }


BATCHES = [7, 1, 30, 13, 52]  # sums to 103


@pytest.mark.parametrize(
    ("text", "expected"),
    [("512MB", 512 * 2**20), ("1GB", 2**30), ("1.5 GiB", int(1.5 * 2**30)), ("256k", 256 * 1024),
     ("100", 100), (4096, 4096), (None, None), ("0", 0)],
)
def test_parse_bytes(text: object, expected: int | None) -> None:
    assert parse_bytes(text) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["lots", "12 parsecs", -1, True, "MB"])
def test_parse_bytes_rejects(bad: object) -> None:
    with pytest.raises(InfoprobeError, match="memory size"):
        parse_bytes(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("budget", [0, 3000, 20_000])
def test_spilled_store_equals_memory_store(budget: int, tmp_path) -> None:
    data = _data()
    with ActivationStore(memory_budget=None) as memory, \
            ActivationStore(memory_budget=budget, spill_dir=tmp_path) as spilled:
        _fill(memory, data, BATCHES)
        _fill(spilled, data, BATCHES)
        assert spilled.memory_bytes <= budget
        assert any(spilled.buffer(k).spilled for k in data)
        assert not any(memory.buffer(k).spilled for k in data)
        assert spilled.disk_bytes > 0
        for key, value in data.items():
            assert torch.equal(memory[key], value)
            assert torch.equal(spilled[key], value)
            assert spilled.n_rows(key) == value.shape[0]
        folder = spilled.spill_folder
        assert folder is not None and folder.parent == tmp_path
        # the spill files are ordinary .npy files
        files = sorted(folder.glob("*.npy"))
        assert files
        for f in files:
            assert np.load(f).shape[0] > 0
    assert not folder.exists()


def test_partially_spilled_layer_keeps_order() -> None:
    x = torch.arange(60.0).reshape(20, 3)
    with ActivationStore(memory_budget=5 * 12) as store:  # room for 5 rows of 3 float32
        for i in range(0, 20, 4):
            store.append("x", x[i:i + 4])
        buffer = store.buffer("x")
        assert buffer.spilled and 0 < buffer._mem_rows < 20
        assert torch.equal(store["x"], x)
        store.append("x", x[:2])  # appending after a read still works
        assert torch.equal(store["x"], torch.cat([x, x[:2]]))


def test_chunks_are_merged_once_and_reads_are_stable() -> None:
    x = torch.randn(1000, 8)
    with ActivationStore(memory_budget=None) as store:
        for i in range(0, 1000, 10):
            store.append("x", x[i:i + 10])
        assert len(store.buffer("x")._chunks) > 1
        first = store["x"]
        assert len(store.buffer("x")._chunks) == 1
        assert torch.equal(first, x)
        assert store["x"].data_ptr() == first.data_ptr()  # no second copy
        assert store.memory_bytes == x.numel() * 4


def test_memory_never_exceeds_budget() -> None:
    budget = 10_000
    with ActivationStore(memory_budget=budget) as store:
        for _ in range(30):
            for key, value in _data(11).items():
                store.append(key, value)
                assert store.memory_bytes <= budget


def test_max_samples_caps_every_key() -> None:
    data = _data()
    with ActivationStore(max_samples=40, memory_budget=2000) as store:
        _fill(store, data, BATCHES)
        for key, value in data.items():
            assert torch.equal(store[key], value[:40])


def test_float16_halves_storage() -> None:
    data = _data()
    with ActivationStore(dtype=torch.float32) as full, ActivationStore(dtype=torch.float16) as half:
        _fill(full, data, [103])
        _fill(half, data, [103])
        assert half.memory_bytes * 2 == full.memory_bytes
        for key, value in data.items():
            assert half[key].dtype == torch.float16
            torch.testing.assert_close(half[key].float(), value, atol=2e-3, rtol=1e-3)


def test_float16_spilled_equals_memory() -> None:
    x = torch.randn(50, 6)
    with ActivationStore(dtype=torch.float16, memory_budget=0) as disk, \
            ActivationStore(dtype=torch.float16, memory_budget=None) as memory:
        disk.append("x", x)
        memory.append("x", x)
        assert disk.buffer("x").spilled
        assert torch.equal(disk["x"], memory["x"])


def test_nan_and_inf_are_stored() -> None:
    x = torch.tensor([[float("nan"), float("inf"), -float("inf"), 1.0]])
    with ActivationStore(memory_budget=0) as disk, ActivationStore() as memory:
        disk.append("x", x)
        memory.append("x", x)
        for store in (disk, memory):
            assert torch.equal(store["x"].isnan(), x.isnan())
            assert torch.equal(store["x"].nan_to_num(), x.nan_to_num())


def test_shape_change_is_an_error() -> None:
    with ActivationStore() as store:
        store.append("x", torch.zeros(2, 3))
        with pytest.raises(InfoprobeError, match=r"Expected rows of shape \(3,\) for layer 'x'"):
            store.append("x", torch.zeros(2, 4))


def test_bad_options_and_keys() -> None:
    with pytest.raises(InfoprobeError, match="storage dtype"):
        ActivationStore(dtype=torch.int64)
    with pytest.raises(InfoprobeError, match="max_samples"):
        ActivationStore(max_samples=-1)
    store = ActivationStore()
    store.append("x", torch.zeros(2, 3))
    with pytest.raises(InfoprobeError, match="Expected one of the stored keys"):
        store["y"]
    with pytest.raises(InfoprobeError, match="already in the store"):
        store.create("x", (3,))
    kept = store["x"]
    store.close()
    assert kept.shape == (2, 3)  # tensors read before close stay valid
    with pytest.raises(InfoprobeError, match="closed"):
        store["x"]


def test_temporary_folder_removed_on_garbage_collection() -> None:
    store = ActivationStore(memory_budget=0)
    store.append("x", torch.ones(4, 2))
    folder = store.spill_folder
    assert folder is not None and folder.exists()
    del store
    import gc

    gc.collect()
    assert not folder.exists()


def test_max_samples_preallocates_one_exact_chunk() -> None:
    x = torch.randn(300, 5)
    with ActivationStore(max_samples=300, memory_budget=None) as store:
        for i in range(0, 300, 7):
            store.append("x", x[i:i + 7])
        assert len(store.buffer("x")._chunks) == 1
        assert store.memory_bytes == 300 * 5 * 4
        assert torch.equal(store["x"], x)


def test_large_chunks_in_own_mappings_round_trip() -> None:
    # chunks of >= 1 MiB live in anonymous memory maps: same values, merges and partial spills
    x = torch.randn(1200, 1024)  # 4.7 MiB
    with ActivationStore(memory_budget=3 * 2**20) as split, ActivationStore(memory_budget=None) as whole:
        for chunk in x.split(300):
            split.append("x", chunk)
            whole.append("x", chunk)
        assert split.buffer("x").spilled and not whole.buffer("x").spilled
        assert len(whole.buffer("x")._chunks) > 1
        assert torch.equal(whole["x"], x)
        assert torch.equal(split["x"], x)
        kept = whole["x"]
    assert torch.equal(kept, x)  # still valid after close: the mapping lives with the tensor
