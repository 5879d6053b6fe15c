"""Config values outside their declared range are refused, naming the key and the range
(issue 12 item 12): no zero timeout, NaN, negative or absurd number reaches the code."""

import pytest

from espomail.config import KEYS, Key, allowed_range, load_settings, starter_config
from espomail.errors import ConfigError

NUMERIC = [name for name, spec in KEYS.items() if Key(*spec).kind.rstrip("?") in ("int", "float", "duration")]


def test_every_number_declares_a_range_that_holds_its_default():
    from espomail.timeutil import parse_duration

    for name in NUMERIC:
        spec = Key(*KEYS[name])
        assert spec.low is not None and spec.high is not None, f"{name} declares no range"
        default = parse_duration(spec.default) if spec.kind == "duration" else spec.default
        assert default is None or spec.low <= default <= spec.high, name  # None: an optional key (int?)


@pytest.mark.parametrize(
    "text, key, shown",
    [
        ("timeout_s: 0", "timeout_s", "from 1 to 3600, got 0"),
        ("timeout_s: .nan", "timeout_s", "got nan"),
        ("timeout_s: .inf", "timeout_s", "got inf"),
        ("timeout_s: -1", "timeout_s", "got -1"),
        ("timeout_s: 1e400", "timeout_s", "got inf"),
        ("max_per_run: 0", "max_per_run", "from 1 to 1000000, got 0"),
        ("max_per_run: 99999999999999999999999", "max_per_run", "got 99999999999999999999999"),
        ("auto_reply_period: 99999999999999h", "auto_reply_period", "from 60 to 31536000 seconds"),
        ("auto_reply_period: 0", "auto_reply_period", "got 0 seconds"),
        ("auto_reply_period: -5", "auto_reply_period", "got -5 seconds"),
        ("lease_s: 99999999999999999999999999", "lease_s", "from 1 to 86400"),
        ("failed_retries: 1000000000000000000000", "failed_retries", "from 0 to 100"),
        ("send_retries: -1", "send_retries", "from 0 to 100"),
        ("workers: 0", "workers", "from 1 to 64"),
        ("workers: 100000", "workers", "from 1 to 64"),
        ("batch_size: 0", "batch_size", "from 1 to 10000"),
        ("max_message_size_mb: 0", "max_message_size_mb", "from 0.001 to 2048"),
        ("max_message_size_mb: .nan", "max_message_size_mb", "got nan"),
        ("stale_after_min: 0", "stale_after_min", "from 1 to 10080"),
        ("notify_max_age_days: 99999999", "notify_max_age_days", "from 0 to 1000000"),
        ("max_personal_accounts: -3", "max_personal_accounts", "from 0 to 10000"),
    ],
)
def test_out_of_range_values_in_the_file_are_refused(tmp_path, text, key, shown):
    config = tmp_path / "c.yaml"
    config.write_text(text + "\n")
    with pytest.raises(ConfigError) as error:
        load_settings(config, env={})
    assert error.value.message.startswith(f"config key '{key}' in {config}: must be ")
    assert shown in error.value.message


@pytest.mark.parametrize(
    "name, value", [("ESPOMAIL_TIMEOUT_S", "nan"), ("ESPOMAIL_TIMEOUT_S", "0"), ("ESPOMAIL_LEASE_S", "9" * 30)]
)
def test_out_of_range_values_in_the_environment_are_refused(name, value):
    with pytest.raises(ConfigError) as error:
        load_settings(env={name: value})
    assert f"in ${name}: must be from" in error.value.message


def test_the_edges_of_each_range_are_accepted(tmp_path):
    for name in NUMERIC:
        spec = Key(*KEYS[name])
        for edge in (spec.low, spec.high):
            value = int(edge) if spec.kind != "float" else edge
            config = tmp_path / "edge.yaml"
            config.write_text(f"{name}: {value}\n")
            settings = load_settings(config, env={"XDG_DATA_HOME": str(tmp_path)})
            field = "side_effects_max_age_days" if name == "notify_max_age_days" else name  # the deprecated alias
            assert getattr(settings, field) == value, name


def test_the_example_config_shows_each_range():
    text = starter_config()
    for name in NUMERIC:
        assert f"({allowed_range(Key(*KEYS[name]))})" in text, name


def test_the_cli_refuses_a_bad_value_with_exit_2_and_changes_nothing(espomail, tmp_path, db_path):
    config = tmp_path / "c.yaml"
    config.write_text("timeout_s: .nan\n")
    result = espomail("--config", config, "init")
    assert result.exit_code == 2
    assert result.stderr == f"Error: config key 'timeout_s' in {config}: must be from 1 to 3600, got nan\n"
    assert not db_path.exists()
