from __future__ import annotations

import pytest

import models
from infoprobe.errors import InfoprobeError
from tests._tiny_model import TinyAE


def test_registered_model_builds_and_is_listed() -> None:
    assert "test-tiny-ae" in models.available()
    model = models.build("test-tiny-ae", bottleneck=3)
    assert isinstance(model, TinyAE) and model.config["bottleneck"] == 3
    rebuilt = models.build(model.registry_name, **model.config)
    assert rebuilt.config == model.config
    assert isinstance(model, models.AutoencoderLike)


def test_unknown_model_lists_alternatives() -> None:
    with pytest.raises(InfoprobeError, match=r"Unknown model 'nope'; available: .*test-tiny-ae"):
        models.build("nope")


def test_bad_config_is_a_user_error() -> None:
    with pytest.raises(InfoprobeError, match="Cannot build model 'test-tiny-ae'"):
        models.build("test-tiny-ae", colour="blue")


def test_name_clash_is_refused() -> None:
    with pytest.raises(InfoprobeError, match="already registered"):
        models.register("test-tiny-ae")(lambda **kw: None)


def test_entry_point_models_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeEntryPoint:
        name = "third-party-ae"

        def load(self) -> object:
            return lambda **config: TinyAE(**config)

    monkeypatch.setattr(models, "entry_points", lambda group: [FakeEntryPoint()] if group == models.ENTRY_POINT_GROUP else [])
    assert "third-party-ae" in models.available()
    assert isinstance(models.build("third-party-ae", bottleneck=2), TinyAE)
