from django.contrib import admin

from .models import ServiceEvent, ServiceType, StandardCost


class StandardCostInline(admin.TabularInline):
    model = StandardCost
    extra = 1
    fields = ["valid_from", "cost_per_unit", "created_by", "created_at"]
    readonly_fields = ["created_by", "created_at"]


@admin.register(ServiceType)
class ServiceTypeAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "name_de", "unit", "active", "sort_order"]
    list_editable = ["active", "sort_order"]
    inlines = [StandardCostInline]


@admin.register(StandardCost)
class StandardCostAdmin(admin.ModelAdmin):
    list_display = ["service_type", "valid_from", "cost_per_unit", "created_by"]
    list_filter = ["service_type"]
    readonly_fields = ["created_by", "created_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(ServiceEvent)
class ServiceEventAdmin(admin.ModelAdmin):
    list_display = ["date", "customer", "service_type", "quantity", "logged_by"]
    list_filter = ["service_type"]
    search_fields = ["customer__number", "customer__name", "note"]
    raw_id_fields = ["customer", "logged_by"]
    list_select_related = ["customer", "service_type", "logged_by"]
    date_hierarchy = "date"
    show_full_result_count = False
