"""Settings layers: defaults < file < environment < options; bad keys and types are named."""

from pathlib import Path

import pytest

from espomail.config import KEYS, load_settings, starter_config
from espomail.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.yaml"


def test_defaults(tmp_path):
    settings = load_settings(env={"XDG_DATA_HOME": str(tmp_path)})
    assert settings.max_per_run == 1000
    assert settings.auto_reply_period == 7200
    assert settings.db_path == tmp_path / "espomail" / "espomail.db"


def test_layers_file_then_env_then_options(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("max_per_run: 10\nworkers: 2\nauto_reply_period: 30m\n")
    env = {"ESPOMAIL_WORKERS": "3", "XDG_DATA_HOME": str(tmp_path)}
    settings = load_settings(config, env=env, overrides={"max_per_run": 7})
    assert (settings.max_per_run, settings.workers, settings.auto_reply_period) == (7, 3, 1800)


@pytest.mark.parametrize(
    "text, key",
    [
        ("max_per_runn: 5\n", "max_per_runn"),
        ("workers: many\n", "workers"),
        ("b2c_mode: maybe\n", "b2c_mode"),
        ("no_reply_pattern: 5\n", "no_reply_pattern"),
    ],
)
def test_bad_key_or_type_names_the_key(tmp_path, text, key):
    config = tmp_path / "c.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_settings(config, env={})
    assert f"'{key}'" in error.value.message


def test_bad_environment_value_names_the_variable():
    with pytest.raises(ConfigError) as error:
        load_settings(env={"ESPOMAIL_TIMEOUT_S": "soon"})
    assert "ESPOMAIL_TIMEOUT_S" in error.value.message


def test_example_config_documents_every_key_and_loads(tmp_path):
    text = EXAMPLE.read_text()
    for key in KEYS:
        assert key in text, key
    assert text == starter_config()
    load_settings(EXAMPLE, env={})


def test_cli_reports_config_errors(espomail, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("workers: lots\n")
    result = espomail("--config", config, "team", "list")
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: config key 'workers'")
