"""One registry of face-model configurations drives every place that offers or checks a choice."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from workstation.cli import build_parser, main
from workstation.errors import ModelError, WorkstationError
from workstation.settings import Settings
from workstation.vision import registry
from workstation.vision.registry import (
    CONFIGURATIONS,
    DEFAULT_CONFIGURATION,
    bundled_model_files,
    configuration,
    configuration_for_model,
    create_engine,
    offered_keys,
)


def _backend_choices() -> tuple[str, ...]:
    action = next(a for a in build_parser()._actions if a.dest == "backend")
    return tuple(action.choices or ())


def test_cli_and_settings_offer_exactly_the_registry() -> None:
    assert _backend_choices() == offered_keys()
    assert DEFAULT_CONFIGURATION in offered_keys() and Settings().backend == DEFAULT_CONFIGURATION
    for key in offered_keys():
        Settings(backend=key).validate()
    for hidden in (c.key for c in CONFIGURATIONS if not c.offered):
        with pytest.raises(WorkstationError, match="backend must be one of"):
            Settings(backend=hidden).validate()
    with pytest.raises(ModelError, match="unknown face model configuration 'nope'"):
        create_engine("nope")


def test_a_new_configuration_is_one_entry(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    fast = configuration("fast")
    added = dataclasses.replace(fast, key="fast-copy", label="Fast again", summary="A copy.")
    monkeypatch.setattr(registry, "CONFIGURATIONS", (*CONFIGURATIONS, added))
    assert "fast-copy" in _backend_choices()
    Settings(backend="fast-copy").validate()
    engine = create_engine("fast-copy")
    assert engine.configuration == "fast-copy" and engine.model == create_engine("fast").model
    assert build_parser().parse_args(["--backend", "fast-copy", "models"]).backend == "fast-copy"
    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["configurations"]
    assert [c["key"] for c in listed] == list(offered_keys())


def test_configurations_are_found_by_model_id_without_loading() -> None:
    for config in CONFIGURATIONS:
        expected = config.expected_model_id()
        if expected is None:
            assert config.needs_pack
            continue
        assert configuration_for_model(str(expected)) is config
    assert configuration_for_model("someone-elses-model@abc") is None
    engine = create_engine("fast")
    assert str(configuration("fast").expected_model_id()) == str(engine.model)


def test_installer_bundles_the_files_of_the_shipped_configurations() -> None:
    files = bundled_model_files()
    assert set(files) == {
        "yunet-2023mar-int8bq",
        "sface-2021dec-int8bq",
        "dlib-resnet-v1",
        "dlib-shape-5pt",
    }


def test_engine_module_imports_no_backend() -> None:
    code = (
        "import sys, workstation.vision.engine, workstation.vision.embedders;"
        "print(sorted(m for m in sys.modules if m.startswith('workstation.vision.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    for module in ("registry", "opencv_backend", "dlib_backend", "insightface_backend"):
        assert f"workstation.vision.{module}" not in out


def test_each_configuration_enrols_on_its_own_detection_copy() -> None:
    # 'fast' detects on a 640 px copy when enrolling (its speed, issue 10 part 5); the others on
    # 1,280 px. The engine carries the side, so enrolment needs no knowledge of configurations.
    assert configuration("fast").enrol_detection_side == registry.FAST_ENROL_DETECTION_SIDE == 640
    assert create_engine("fast").enrol_detection_side == 640
    for key in ("accurate", "fast-mirror"):
        assert create_engine(key).enrol_detection_side == 1280
