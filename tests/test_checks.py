from __future__ import annotations

import pytest
from django.core import checks
from django.test import override_settings

from maintenance_perf.checks import check_settings


def ids(messages: list[checks.CheckMessage]) -> list[str | None]:
    return [message.id for message in messages]


def test_check_settings_default_settings_pass() -> None:
    assert check_settings() == []


@override_settings(MAINTENANCE_PERF=None)
def test_check_settings_missing_setting_passes() -> None:
    assert check_settings() == []


@override_settings(MAINTENANCE_PERF=["CACHE_ALIAS"])
def test_check_settings_not_a_dict() -> None:
    messages = check_settings()

    assert ids(messages) == ["maintenance_perf.E001"]
    assert "must be a dict, not list" in messages[0].msg


@override_settings(MAINTENANCE_PERF={"DASHBOARD_TIMOUT": 60})
def test_check_settings_unknown_key_suggests_the_right_one() -> None:
    messages = check_settings()

    assert ids(messages) == ["maintenance_perf.E002"]
    assert "Did you mean 'DASHBOARD_TIMEOUT'?" in messages[0].hint


@override_settings(MAINTENANCE_PERF={"CACHE_ALIAS": "redis"})
def test_check_settings_unknown_cache_alias() -> None:
    messages = check_settings()

    assert ids(messages) == ["maintenance_perf.E003"]
    assert "'redis', which is not in CACHES" in messages[0].msg
    assert "default" in messages[0].hint


@pytest.mark.parametrize("timeout", [-1, "300", 2.5, True, None])
def test_check_settings_bad_timeout(timeout: object) -> None:
    with override_settings(MAINTENANCE_PERF={"DASHBOARD_TIMEOUT": timeout}):
        messages = check_settings()

    assert ids(messages) == ["maintenance_perf.E004"]
    assert repr(timeout) in messages[0].msg


@override_settings(MAINTENANCE_PERF={"DASHBOARD_TIMEOUT": 0})
def test_check_settings_zero_timeout_warns() -> None:
    messages = check_settings()

    assert ids(messages) == ["maintenance_perf.W001"]
    assert isinstance(messages[0], checks.Warning)


@pytest.mark.parametrize("prefix", ["", "my prefix", "a" * 51, 42])
def test_check_settings_bad_key_prefix(prefix: object) -> None:
    with override_settings(MAINTENANCE_PERF={"KEY_PREFIX": prefix}):
        messages = check_settings()

    assert ids(messages) == ["maintenance_perf.E005"]


@override_settings(MAINTENANCE_PERF={"MODELS": ["core.Location"]})
def test_check_settings_models_not_a_dict() -> None:
    assert ids(check_settings()) == ["maintenance_perf.E006"]


@override_settings(MAINTENANCE_PERF={"MODELS": {"equipement": "equipment.Equipment"}})
def test_check_settings_unknown_model_role() -> None:
    messages = check_settings()

    assert ids(messages) == ["maintenance_perf.E006"]
    assert "'equipment'" in messages[0].hint


@override_settings(MAINTENANCE_PERF={"MODELS": {"equipment": "equipment.Machine"}})
def test_check_settings_model_label_not_installed() -> None:
    messages = check_settings()

    assert ids(messages) == ["maintenance_perf.E007"]
    assert "'equipment.Machine', which is not an installed model" in messages[0].msg
    assert "'equipment.Equipment'" in messages[0].hint


@pytest.mark.parametrize("label", ["Equipment", "a.b.c", 3])
def test_check_settings_model_label_malformed(label: object) -> None:
    with override_settings(MAINTENANCE_PERF={"MODELS": {"equipment": label}}):
        messages = check_settings()

    assert ids(messages) == ["maintenance_perf.E007"]
    assert "not an 'app_label.ModelName' label" in messages[0].msg


@override_settings(MAINTENANCE_PERF={"MODELS": {"schedule": None}})
def test_check_settings_role_mapped_to_none_is_allowed() -> None:
    assert check_settings() == []


@override_settings(
    MAINTENANCE_PERF={"CACHE_ALIAS": "nope", "DASHBOARD_TIMEOUT": -5, "colour": 1}
)
def test_check_settings_reports_every_mistake_at_once() -> None:
    assert sorted(ids(check_settings())) == [
        "maintenance_perf.E002",
        "maintenance_perf.E003",
        "maintenance_perf.E004",
    ]


@override_settings(MAINTENANCE_PERF={"DASHBOARD_TIMEOUT": -5})
def test_check_command_fails_on_a_bad_setting() -> None:
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    with pytest.raises(SystemCheckError, match=r"maintenance_perf\.E004"):
        call_command("check")


@pytest.mark.parametrize(
    ("key", "value", "number"),
    [
        ("TIMEOUT_JITTER", 0.9, "E011"),
        ("TIMEOUT_JITTER", "0.1", "E011"),
        ("LOCK_TIMEOUT", 0, "E012"),
        ("LOCK_TIMEOUT", 2.5, "E012"),
        ("STAMPEDE_WAIT", -1, "E013"),
        ("STAMPEDE_WAIT", True, "E013"),
        ("STAMPEDE_WAIT", float("inf"), "E013"),
        ("STAMPEDE_WAIT", 1e300, "E013"),
        ("LOCK_TIMEOUT", 10**400, "E012"),
        ("OUTAGE_RETRY_INTERVAL", 3601, "E014"),
        ("DASHBOARD_TIMEOUT", 10**400, "E004"),
        ("DASHBOARD_TIMEOUT", 365 * 24 * 3600 + 1, "E004"),
        ("OUTAGE_RETRY_INTERVAL", 0, "E014"),
    ],
)
def test_check_settings_bad_cache_tuning(key: str, value: object, number: str) -> None:
    with override_settings(MAINTENANCE_PERF={key: value}):
        messages = check_settings()

    assert ids(messages) == [f"maintenance_perf.{number}"]
    assert repr(value) in messages[0].msg


@override_settings(
    MAINTENANCE_PERF={"TIMEOUT_JITTER": 0, "STAMPEDE_WAIT": 0.5, "LOCK_TIMEOUT": 5}
)
def test_check_settings_good_cache_tuning() -> None:
    assert check_settings() == []


@pytest.mark.parametrize("watch", ["auth.User", {"auth.User"}])
def test_check_settings_watch_not_a_list(watch: object) -> None:
    with override_settings(MAINTENANCE_PERF={"WATCH": watch}):
        assert ids(check_settings()) == ["maintenance_perf.E010"]


@override_settings(MAINTENANCE_PERF={"WATCH": ["auth.User", "stock.Part", 5]})
def test_check_settings_watch_names_unknown_models() -> None:
    messages = check_settings()

    assert ids(messages) == ["maintenance_perf.E010"] * 2
    assert "'stock.Part'" in messages[0].msg
