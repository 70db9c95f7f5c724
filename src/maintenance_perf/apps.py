from __future__ import annotations

from django.apps import AppConfig


class MaintenancePerfConfig(AppConfig):
    name = "maintenance_perf"
    verbose_name = "Maintenance performance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing registers the system checks with Django's check framework.
        from django.core.signals import setting_changed

        from maintenance_perf import checks  # noqa: F401
        from maintenance_perf.cache import connect_signals

        connect_signals()
        setting_changed.connect(connect_signals, dispatch_uid="maintenance_perf.watch")

        # Planned indexes join their models' Meta.indexes, so that Django's
        # migration state and the models agree on them.
        from maintenance_perf.indexes import install_plan

        install_plan()
        setting_changed.connect(install_plan, dispatch_uid="maintenance_perf.indexes")
