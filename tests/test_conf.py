from __future__ import annotations

import pytest
from django.test import override_settings

from core.models import Location
from equipment.models import Equipment
from maintenance_perf.conf import DEFAULT_MODELS, conf


def test_conf_defaults() -> None:
    with override_settings(MAINTENANCE_PERF={}):
        assert conf.cache_alias == "default"
        assert conf.key_prefix == "mperf"
        assert conf.dashboard_timeout == 300
        assert conf.models == DEFAULT_MODELS


def test_conf_reads_settings_on_each_access() -> None:
    with override_settings(MAINTENANCE_PERF={"DASHBOARD_TIMEOUT": 60}):
        assert conf.dashboard_timeout == 60
    with override_settings(MAINTENANCE_PERF={"DASHBOARD_TIMEOUT": 900}):
        assert conf.dashboard_timeout == 900


def test_conf_wrong_type_falls_back_to_default() -> None:
    with override_settings(MAINTENANCE_PERF={"DASHBOARD_TIMEOUT": "soon"}):
        assert conf.dashboard_timeout == 300
    with override_settings(MAINTENANCE_PERF="not a dict"):
        assert conf.key_prefix == "mperf"


def test_conf_models_merge_with_defaults() -> None:
    with override_settings(MAINTENANCE_PERF={"MODELS": {"schedule": None}}):
        assert conf.models["schedule"] is None
        assert conf.models["equipment"] == "equipment.Equipment"
        assert conf.get_model("schedule") is None
        assert conf.get_model("equipment") is Equipment
        assert conf.get_model("location") is Location


def test_conf_get_model_unknown_role() -> None:
    with pytest.raises(KeyError, match="unknown model role 'machine'"):
        conf.get_model("machine")
