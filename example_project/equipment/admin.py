from __future__ import annotations

from django.contrib import admin

from equipment.models import Equipment


@admin.register(Equipment)
class EquipmentAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "location", "status", "category"]
    list_filter = ["status", "category"]
    list_select_related = ["location"]
    raw_id_fields = ["location"]
    search_fields = ["name", "code"]
