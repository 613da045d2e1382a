"""Strict typed config: unknown, duplicate, mistyped and out-of-range values are errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from wisp_shacira.config import build_config, load_config, load_yaml, parse_overrides
from wisp_shacira.errors import ConfigError
from wisp_shacira.tasks import get_task
from wisp_shacira.tasks.image import AppConfig

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_yaml_and_overrides_compose(tmp_path) -> None:
    path = _write(tmp_path, "task: image\ntrainer:\n  iterations: 10\n  lambda_end: 1e-5\n")
    cfg = load_config(AppConfig, path, ["--trainer.iterations", "20", "--grid.num_levels=4"])
    assert cfg.trainer.iterations == 20 and cfg.grid.num_levels == 4
    assert cfg.trainer.lambda_end == pytest.approx(1e-5)
    assert cfg.nef.hidden_dim == 16


@pytest.mark.parametrize("text, message", [
    ("task: image\ntrainer:\n  iteratons: 10\n", "unknown config key trainer.iteratons"),
    ("task: image\nbogus: 1\n", "unknown config key bogus"),
    ("task: image\ntrainer:\n  iterations: 10\ntrainer:\n  seed: 1\n", "duplicate config key 'trainer'"),
    ("task: image\ntrainer:\n  iterations: ten\n", "trainer.iterations: expected int"),
    ("task: image\ntrainer:\n  iterations: 0\n", "trainer.iterations must be >= 1"),
    ("task: image\ngrid:\n  compressed: maybe\n", "grid.compressed: expected bool"),
    ("task: image\ntrainer: [1, 2]\n", "trainer: expected a mapping"),
    ("task: video\n", "task"),
    ("task: image\ngrid: {num_levels: 2\n", "invalid YAML"),
])
def test_bad_configs_are_rejected_with_the_key_named(tmp_path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(AppConfig, _write(tmp_path, text), [])


def test_bad_overrides() -> None:
    with pytest.raises(ConfigError, match="needs a value"):
        parse_overrides(["--trainer.iterations"])
    with pytest.raises(ConfigError, match="given twice"):
        parse_overrides(["--a.b", "1", "--a.b", "2"])
    with pytest.raises(ConfigError, match="expected --key"):
        parse_overrides(["trainer.iterations", "3"])
    with pytest.raises(ConfigError, match="unknown config key trainer.nope"):
        build_config(AppConfig, parse_overrides(["--trainer.nope", "1"]))


def test_missing_config_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(AppConfig, tmp_path / "nope.yaml", [])


@pytest.mark.parametrize("path", sorted(str(p) for p in ROOT.joinpath("configs").glob("*.yaml")))
def test_bundled_configs_load_and_pass_their_checks(path: str) -> None:
    data = load_yaml(path)
    needs_path = data.get("dataset", {}).get("format") == "rtmv"   # no bundled RTMV scene
    cfg = load_config(get_task(data["task"]).config_type, path,
                      ["--dataset.path=scene"] if needs_path else [])
    assert cfg.grid.num_levels >= 1
