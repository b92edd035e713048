from pathlib import Path

import pytest

from config import ConfigError, Settings


def test_defaults_match_the_documented_ones():
    s = Settings.from_env({})
    assert (s.host, s.port, s.data_dir, s.event_log) == ("127.0.0.1", 8050, Path("data"), "memory://")
    assert (s.stats_interval_s, s.history, s.url_prefix) == (1.0, 10_000, "/")


def test_values_are_parsed_from_the_environment():
    s = Settings.from_env(
        {
            "MLOPS_HOST": "::1",
            "MLOPS_PORT": "9000",
            "MLOPS_DATA_DIR": "/tmp/x",
            "MLOPS_EVENT_LOG": "redis://localhost:6379/2",
            "MLOPS_STATS_INTERVAL_S": "0.5",
            "MLOPS_HISTORY": "500",
            "MLOPS_URL_PREFIX": "mlops",
            "MLOPS_DEBUG": "yes",
        }
    )
    assert s.port == 9000 and s.data_dir == Path("/tmp/x") and s.event_log.startswith("redis://")
    assert s.stats_interval_s == 0.5 and s.history == 500 and s.url_prefix == "/mlops/" and s.debug is True


@pytest.mark.parametrize("raw", ["False", "false", "0", "no", "off"])
def test_false_means_false(raw):
    assert Settings.from_env({"MLOPS_DEBUG": raw}).debug is False


@pytest.mark.parametrize(
    "name, raw, expected",
    [
        ("MLOPS_PORT", "eighty", "not a number"),
        ("MLOPS_PORT", "70000", "1..65535"),
        ("MLOPS_DEBUG", "maybe", "true/false"),
        ("MLOPS_EVENT_LOG", "kafka://x", "memory:// or redis://"),
        ("MLOPS_STATS_INTERVAL_S", "0", ">= 0.05"),
        ("MLOPS_STATS_INTERVAL_S", "nan", "finite"),
        ("MLOPS_HISTORY", "10", ">= 100"),
    ],
)
def test_bad_values_fail_naming_the_variable(name, raw, expected):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({name: raw})
    assert name in str(info.value) and repr(raw) in str(info.value) and expected in str(info.value)


def test_chart_points_follow_window_and_interval():
    assert Settings(chart_window_s=600, stats_interval_s=1.0).chart_points == 600
    assert Settings(chart_window_s=600, stats_interval_s=2.0).chart_points == 300


def test_auth_auto_is_local_on_loopback_and_on_elsewhere():
    assert Settings.from_env({}).auth_mode == "local"
    assert Settings.from_env({"MLOPS_HOST": "localhost"}).auth_mode == "local"
    assert Settings.from_env({"MLOPS_HOST": "0.0.0.0"}).auth_mode == "on"
    assert Settings.from_env({"MLOPS_HOST": "0.0.0.0", "MLOPS_AUTH": "on"}).auth_mode == "on"
    assert Settings.from_env({"MLOPS_AUTH": "on"}).auth_mode == "on"


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"MLOPS_HOST": "0.0.0.0", "MLOPS_AUTH": "local"}, "set MLOPS_AUTH=on"),
        ({"MLOPS_HOST": "10.1.2.3", "MLOPS_DEBUG": "true"}, "MLOPS_DEBUG=false"),
        ({"MLOPS_HOST": "0.0.0.0", "MLOPS_DEBUG": "true", "MLOPS_AUTH": "on"}, "MLOPS_DEBUG=false"),
        ({"MLOPS_ADMIN_USER": "ada"}, "MLOPS_ADMIN_PASSWORD go together"),
        ({"MLOPS_AUTH": "maybe"}, "auto, local, on"),
        ({"MLOPS_ALLOWED_ORIGINS": "evil.example"}, "not an origin"),
    ],
)
def test_unsafe_combinations_are_refused_at_start(env, expected):
    with pytest.raises(ConfigError, match=expected):
        Settings.from_env(env)


def test_a_bad_password_setting_is_not_echoed():
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"MLOPS_SESSION_HOURS": "-1", "MLOPS_ADMIN_PASSWORD": "hunter22"})
    assert "hunter22" not in str(info.value)


def test_lists_are_parsed():
    s = Settings.from_env({"MLOPS_ALLOWED_HOSTS": "Dash.Example.com, 10.0.0.5", "MLOPS_ALLOWED_ORIGINS": "https://wiki.example/"})
    assert s.allowed_hosts == ("dash.example.com", "10.0.0.5") and s.allowed_origins == ("https://wiki.example",)
