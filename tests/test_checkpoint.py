from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from infoprobe import checkpoint
from infoprobe.errors import InfoprobeError
from tests._tiny_model import tiny_model


def test_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    model = tiny_model().eval()
    path = checkpoint.save(
        tmp_path / "m.pt", model,
        dataset={"name": "digits", "split": "train", "preprocessing": "pixel value / 16"},
        training={"epochs": 3, "seed": 0}, metrics={"test_loss": 0.25},
    )
    ckpt = checkpoint.load(path)
    assert ckpt.format_version == checkpoint.FORMAT_VERSION
    assert ckpt.model_name == "test-tiny-ae" and ckpt.model_config == {"dataset": "digits", "bottleneck": 4}
    assert ckpt.dataset == {"name": "digits", "split": "train", "preprocessing": "pixel value / 16"}
    assert ckpt.training["epochs"] == 3 and ckpt.metrics == {"test_loss": 0.25}
    rebuilt = checkpoint.build_model(ckpt)
    x = torch.rand(7, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(model.reconstruct(x), rebuilt.reconstruct(x))
    summary = ckpt.summary()
    assert summary["n_parameters"] == sum(p.numel() for p in model.parameters())


def test_interrupted_save_leaves_previous_file_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = checkpoint.save(tmp_path / "m.pt", tiny_model(0))
    before = path.read_bytes()

    def exploding_save(obj: object, f: object, *args: object, **kwargs: object) -> None:
        f.write(b"partial bytes")  # type: ignore[attr-defined]
        raise KeyboardInterrupt("simulated interruption")

    monkeypatch.setattr(torch, "save", exploding_save)
    with pytest.raises(KeyboardInterrupt, match="simulated interruption"):
        checkpoint.save(path, tiny_model(1))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.pt"]  # no temporary file left behind


def test_a_signal_during_a_save_arrives_after_the_file_is_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `kill` inside torch.save's zip writer used to surface as the writer's RuntimeError, not as an
    # interruption (`infoprobe train` then exited 1 with a traceback instead of 130 with a checkpoint)
    import signal

    real_save = torch.save

    def signalled_save(obj: object, f: object, *args: object, **kwargs: object) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        real_save(obj, f, *args, **kwargs)  # type: ignore[arg-type]

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    monkeypatch.setattr(torch, "save", signalled_save)
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        with pytest.raises(KeyboardInterrupt, match=f"signal {int(signal.SIGTERM)}"):
            checkpoint.save(tmp_path / "m.pt", tiny_model(1))
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, previous)
    loaded = checkpoint.load(tmp_path / "m.pt")
    expected = tiny_model(1).state_dict()
    assert all(torch.equal(loaded.state_dict[k], v) for k, v in expected.items())
    assert os.listdir(tmp_path) == ["m.pt"]


class _Payload:
    """Unpickling this runs code: it creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (Path.touch, (self.marker,))


def test_malicious_checkpoint_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": "infoprobe-checkpoint", "payload": _Payload(marker)}, path)
    with pytest.raises(InfoprobeError, match=r"Refusing to open .*weights_only=True"):
        checkpoint.load(path)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_plain_pickle_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(InfoprobeError, match=r"Refusing to open|truncated or corrupt"):
        checkpoint.load(path)
    assert not marker.exists()


def test_pickled_module_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(InfoprobeError, match="state_dict instead"):
        checkpoint.load(path)


def test_truncated_and_missing_files(tmp_path: Path) -> None:
    path = checkpoint.save(tmp_path / "m.pt", tiny_model())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InfoprobeError, match="truncated or corrupt"):
        checkpoint.load(path)
    with pytest.raises(InfoprobeError, match="does not exist"):
        checkpoint.load(tmp_path / "nope.pt")


def test_bare_state_dict_loads_without_a_model_name(tmp_path: Path) -> None:
    model = tiny_model()
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    ckpt = checkpoint.load(tmp_path / "sd.pt")
    assert ckpt.model_name is None and set(ckpt.state_dict) == set(model.state_dict())
    with pytest.raises(InfoprobeError, match=r"--model package\.module:factory"):
        checkpoint.build_model(ckpt)


def test_weights_that_do_not_fit_are_reported(tmp_path: Path) -> None:
    model = tiny_model()
    path = checkpoint.save(tmp_path / "m.pt", model, config={"dataset": "digits", "bottleneck": 5})
    with pytest.raises(InfoprobeError, match="do not fit model 'test-tiny-ae'"):
        checkpoint.build_model(checkpoint.load(path))


def test_unsupported_format_version(tmp_path: Path) -> None:
    path = tmp_path / "future.pt"
    torch.save({"format": "infoprobe-checkpoint", "format_version": 99, "state_dict": {}}, path)
    with pytest.raises(InfoprobeError, match="format version 99"):
        checkpoint.load(path)


def test_config_must_be_json(tmp_path: Path) -> None:
    with pytest.raises(InfoprobeError, match="JSON-able"):
        checkpoint.save(tmp_path / "m.pt", tiny_model(), training={"when": object()})


def test_build_model_with_a_user_factory(tmp_path: Path) -> None:
    model = tiny_model().eval()
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    ckpt = checkpoint.load(tmp_path / "sd.pt")
    rebuilt = checkpoint.build_model(ckpt, factory=lambda: tiny_model(seed=5))
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(rebuilt.reconstruct(x), model.reconstruct(x))
    with pytest.raises(InfoprobeError, match=r"returned a dict, expected an nn\.Module"):
        checkpoint.build_model(ckpt, factory=lambda: {})
    with pytest.raises(InfoprobeError, match="do not fit the model from"):
        checkpoint.build_model(ckpt, factory=lambda: torch.nn.Linear(2, 2))


def test_export_keeps_weights_and_records_and_drops_the_resumable_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import hashlib

    import models
    from infoprobe.cli import main
    from infoprobe.data import load_dataset
    from models.training import train

    data = load_dataset("digits", split="train")
    model = models.build("classical-ae", dataset="digits")
    train(model, data, out=tmp_path / "run", epochs=1, progress=False)
    source = checkpoint.load(tmp_path / "run" / "checkpoint.pt")
    assert source.state is not None

    assert main(["export", str(source.path), str(tmp_path / "shared.pt")]) == 0
    copy = checkpoint.load(tmp_path / "shared.pt")
    assert copy.state is None
    assert copy.state_dict.keys() == source.state_dict.keys()
    assert all(torch.equal(copy.state_dict[k], v) for k, v in source.state_dict.items())
    assert (copy.model_name, copy.model_config, copy.dataset, copy.metrics, copy.created) == (
        source.model_name, source.model_config, source.dataset, source.metrics, source.created)
    assert {k: v for k, v in copy.training.items() if k != "exported"} == source.training
    assert (tmp_path / "shared.pt").stat().st_size < 0.5 * source.path.stat().st_size  # Adam moments gone
    printed = capsys.readouterr().out
    assert hashlib.sha256((tmp_path / "shared.pt").read_bytes()).hexdigest() in printed

    with pytest.raises(InfoprobeError, match="no training state"):
        train(models.build("classical-ae", dataset="digits"), data, out=tmp_path / "shared.pt",
              epochs=2, progress=False, resume=True)


def test_export_refuses_its_own_source_and_bare_state_dicts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from infoprobe.cli import main

    model = tiny_model()
    checkpoint.save(tmp_path / "m.pt", model, name="tiny", config={})
    assert main(["export", str(tmp_path / "m.pt"), str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "onto itself" in err
    torch.save(model.state_dict(), tmp_path / "bare.pt")
    with pytest.raises(InfoprobeError, match="already weights only"):
        checkpoint.export(tmp_path / "bare.pt", tmp_path / "out.pt")
