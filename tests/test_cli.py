from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from infoprobe import __version__, checkpoint
from infoprobe.cli import main
from tests._tiny_model import tiny_model


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="0"):
        main(["--version"])
    assert __version__ in capsys.readouterr().out
    with pytest.raises(SystemExit, match="0"):
        main(["--help"])
    assert "inspect" in capsys.readouterr().out


def test_inspect_prints_what_a_checkpoint_holds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = checkpoint.save(tmp_path / "m.pt", tiny_model(), dataset={"name": "digits", "split": "train"},
                           training={"epochs": 2}, metrics={"test_loss": 0.5})
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "test-tiny-ae" in out and "test_loss" in out and "bottleneck" in out
    assert main(["inspect", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["format_version"] == 1 and summary["metrics"]["test_loss"] == 0.5
    assert summary["n_parameters"] == sum(p.numel() for p in tiny_model().parameters())


def test_user_errors_are_one_line_and_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(tmp_path / "missing.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("infoprobe: error:") and err.count("\n") == 1 and "Traceback" not in err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["inspect", str(bad)]) == 2
    assert "truncated or corrupt" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="2"):
        main(["no-such-command"])
    assert "invalid choice" in capsys.readouterr().err


def test_analyze_help_lists_the_new_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="0"):
        main(["analyze", "--help"])
    text = capsys.readouterr().out
    for flag in ("--estimator", "--preset", "--exclude", "--ci", "--n-boot", "--joint-samples", "--no-exact",
                 "--wide"):
        assert flag in text, flag
    assert "--estimators" not in text and "callahan2021" in text
    with pytest.raises(SystemExit, match="2"):
        main(["analyze", "x.pt", "--estimators", "knn"])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unrecognized arguments: --estimators" in err


@pytest.mark.parametrize(("message", "parameter", "flag", "expected"), [
    ("Expected a confidence level 0 < ci < 1, got 1.5; pass e.g. ci=0.95", "ci", "--ci",
     "Expected a confidence level 0 < --ci < 1, got 1.5; pass e.g. --ci 0.95"),
    ("Expected joint_samples to be an integer >= 10, got 5", "joint_samples", "--joint-samples",
     "Expected --joint-samples to be an integer >= 10, got 5"),
    ("Layer pattern 'x' in layers matches no module; names: encoder.layers.0, layers_b, mylayers",
     "layers", "--layers",
     "Layer pattern 'x' in --layers matches no module; names: encoder.layers.0, layers_b, mylayers"),
    ("a precise decimal value of ci.", "ci", "--ci", "a precise decimal value of --ci."),
])
def test_parameter_names_become_flags_as_whole_words(message: str, parameter: str, flag: str, expected: str) -> None:
    from infoprobe.cli import flag_message

    assert flag_message(message, parameter, flag) == expected


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="does not exist"):
        main(["--debug", "inspect", str(tmp_path / "missing.pt")])


def test_console_entry_point_in_a_subprocess(tmp_path: Path) -> None:
    torch.save({"w": torch.zeros(2)}, tmp_path / "sd.pt")
    ok = subprocess.run([sys.executable, "-m", "infoprobe", "inspect", str(tmp_path / "sd.pt")],
                        capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and "bare state_dict" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "infoprobe", "inspect", str(tmp_path / "x.pt")],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
    assert "does not exist" in bad.stderr


def test_import_is_light() -> None:
    code = "import sys, infoprobe; print(any(m in sys.modules for m in ('umap', 'matplotlib', 'sklearn')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_device_resolution() -> None:
    from infoprobe.device import resolve_device
    from infoprobe.errors import InfoprobeError

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InfoprobeError, match="Unknown device 'gpu0'"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(InfoprobeError, match="no CUDA device; use device='cpu'"):
            resolve_device("cuda")


@pytest.mark.slow
def test_sigterm_checkpoints_a_training_run(tmp_path: Path) -> None:
    """`kill` (or the end of a session) interrupts `infoprobe train` like Ctrl-C: the finished steps
    are checkpointed, so --resume continues instead of starting again."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "infoprobe", "train", "inn-ae", "--dataset", "digits", "--epochs", "200",
           "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while not (out / "metrics.jsonl").is_file() or not (out / "metrics.jsonl").read_text():
        assert time.monotonic() < deadline and proc.poll() is None, "no epoch finished"
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err
    ckpt = checkpoint.load(out / "checkpoint.pt")
    assert ckpt.training["epochs_done"] >= 1 and ckpt.state is not None  # resumable state kept
