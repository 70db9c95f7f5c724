from __future__ import annotations

from django.contrib import admin

from events.models import CalendarEvent


@admin.register(CalendarEvent)
class CalendarEventAdmin(admin.ModelAdmin):
    list_display = ["title", "event_type", "event_date", "equipment", "is_completed"]
    list_filter = ["event_type", "is_completed"]
    list_select_related = ["equipment"]
    raw_id_fields = ["equipment", "activity"]
    search_fields = ["title"]
    date_hierarchy = "event_date"
