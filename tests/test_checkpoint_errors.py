"""A file that is not a checkpoint is one line that says so, and never repeats torch's advice to
retry with ``weights_only=False`` (which would run code from an untrusted file)."""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from infoprobe import checkpoint
from infoprobe.cli import main
from infoprobe.errors import InfoprobeError


class _Payload:
    """Unpickling this runs code: it creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (Path.touch, (self.marker,))


def _random_bytes(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 3 + os.urandom(2048))  # 0x00 first: not text, not a pickle


def _text(path: Path) -> None:
    path.write_text("model: inn-ae\nweights: somewhere else\n")


def _zip_not_torch(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "a zip archive, but not one torch.save wrote")


def _pickle_forbidden_global(path: Path) -> None:
    path.write_bytes(pickle.dumps(_Payload(path.with_suffix(".pwned")), protocol=2))


def _torch_save_forbidden_global(path: Path) -> None:
    torch.save({"state_dict": _Payload(path.with_suffix(".pwned"))}, path)


def _pickle_protocol_5(path: Path) -> None:
    path.write_bytes(pickle.dumps(_Payload(path.with_suffix(".pwned")), protocol=5))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


MAKERS: dict[str, tuple[Callable[[Path], None], str]] = {
    "random bytes": (_random_bytes, r"not a PyTorch checkpoint \(unrecognised binary data\)"),
    "text": (_text, r"not a PyTorch checkpoint \(a text file\)"),
    "zip, not torch": (_zip_not_torch, r"not a PyTorch checkpoint \(a zip archive"),
    "pickle, forbidden global": (_pickle_forbidden_global, r"Refusing to open .*arbitrary code"),
    "torch.save, forbidden global": (_torch_save_forbidden_global, r"Refusing to open .*arbitrary code"),
    "pickle protocol 5": (_pickle_protocol_5, r"not a PyTorch checkpoint \(a pickle stream"),
    "empty": (_empty, r"not a PyTorch checkpoint \(the file is empty\)"),
}


@pytest.mark.parametrize("kind", list(MAKERS))
def test_load_says_what_the_file_is_not(tmp_path: Path, kind: str) -> None:
    make, expected = MAKERS[kind]
    path = tmp_path / "file.pt"
    make(path)
    with pytest.raises(InfoprobeError, match=expected) as info:
        checkpoint.load(path)
    message = str(info.value)
    assert "weights_only=False" not in message and "weights_only` set to `False`" not in message
    assert "\n" not in message
    assert not path.with_suffix(".pwned").exists()  # nothing from the file ran


@pytest.mark.parametrize("kind", list(MAKERS))
def test_cli_error_is_one_line_status_2(tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "file.pt"
    MAKERS[kind][0](path)
    assert main(["inspect", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("infoprobe: error:") and captured.err.count("\n") == 1
    assert "weights_only=False" not in captured.err and "False" not in captured.err
    assert not path.with_suffix(".pwned").exists()
