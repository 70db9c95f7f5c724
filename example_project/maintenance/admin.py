from __future__ import annotations

from django.contrib import admin

from maintenance.models import MaintenanceActivity, MaintenanceSchedule


@admin.register(MaintenanceActivity)
class MaintenanceActivityAdmin(admin.ModelAdmin):
    list_display = [
        "title",
        "equipment",
        "activity_type",
        "status",
        "priority",
        "scheduled_start",
        "scheduled_end",
    ]
    list_filter = ["status", "activity_type", "priority"]
    list_select_related = ["equipment"]
    raw_id_fields = ["equipment", "schedule"]
    search_fields = ["title", "equipment__name"]
    date_hierarchy = "scheduled_start"


@admin.register(MaintenanceSchedule)
class MaintenanceScheduleAdmin(admin.ModelAdmin):
    list_display = [
        "title",
        "equipment",
        "activity_type",
        "frequency_days",
        "next_due_date",
        "is_active",
    ]
    list_filter = ["is_active", "activity_type"]
    list_select_related = ["equipment"]
    raw_id_fields = ["equipment"]
    search_fields = ["title", "equipment__name"]
