"""What the commands print: plain text without control characters when standard output is not a
terminal; progress bars only on standard error, and only when it is a terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _control_characters(text: str) -> set[str]:
    return {c for c in text if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) < 0xA0}


def _infoprobe(args: list[str], *, stderr_tty: bool) -> tuple[str, str]:
    """Run ``python -m infoprobe ARGS`` with stdout a pipe and stderr a pipe or a pseudo-terminal."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    if not stderr_tty:
        done = subprocess.run([sys.executable, "-m", "infoprobe", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout, done.stderr
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a 0-column bar is empty
    chunks: list[bytes] = []

    def drain() -> None:  # a full pseudo-terminal buffer would block the child
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the child closed its end
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    proc = subprocess.Popen([sys.executable, "-m", "infoprobe", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    out, _ = proc.communicate(timeout=300)
    reader.join(timeout=10)
    os.close(master)
    err = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, err
    return out.decode("utf-8"), err


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("run")
    out, err = _infoprobe(["train", "classical-ae", "--dataset", "digits", "--epochs", "2", "--subset", "256",
                           "--test-subset", "64", "--out", str(folder), "--device", "cpu"], stderr_tty=False)
    assert "checkpoint:" in out
    assert _control_characters(out) == set() and "epoch 1/2" not in err  # no bar in a pipe
    return folder / "checkpoint.pt"


ANALYZE = ["--samples", "120", "--joint-samples", "120", "--n-boot", "4", "--no-umap", "--device", "cpu"]


@pytest.mark.slow
def test_piped_output_is_plain_and_fits_120_columns(trained: Path, tmp_path: Path) -> None:
    out, err = _infoprobe(["analyze", str(trained), "--out", str(tmp_path / "a"), *ANALYZE], stderr_tty=False)
    assert "read first:" in out and "report.html" in out
    assert _control_characters(out) == set(), "stdout is a pipe: no escape sequences, no carriage returns"
    assert "\x1b" not in err and "\r" not in err, "stderr is a pipe too: no progress bar"
    table = out[: out.index("marks:")].splitlines()
    assert max(len(line) for line in table) <= 120


@pytest.mark.slow
def test_progress_bars_stay_on_a_terminal_stderr(trained: Path, tmp_path: Path) -> None:
    out, err = _infoprobe(["analyze", str(trained), "--out", str(tmp_path / "a"), *ANALYZE], stderr_tty=True)
    assert "\r" in err and "estimating" in err, "stderr is a terminal: the progress bars are drawn there"
    assert _control_characters(out) == set() and "read first:" in out
