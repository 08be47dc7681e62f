from django.contrib import admin

from .models import CustomerValue, ValuationPolicy, ValuationRun


@admin.register(ValuationRun)
class ValuationRunAdmin(admin.ModelAdmin):
    list_display = ["as_of", "status", "trigger", "started_at", "finished_at", "customer_count", "rows_written"]
    list_filter = ["status", "trigger"]
    readonly_fields = [f.name for f in ValuationRun._meta.fields]


@admin.register(CustomerValue)
class CustomerValueAdmin(admin.ModelAdmin):
    list_display = ["customer", "run", "segment", "abc_class", "clv", "value_to_customer", "p_alive"]
    list_filter = ["segment", "abc_class", "is_thin"]
    search_fields = ["customer__number", "customer__name"]
    raw_id_fields = ["customer", "run"]
    list_select_related = ["customer", "run"]
    show_full_result_count = False


@admin.register(ValuationPolicy)
class ValuationPolicyAdmin(admin.ModelAdmin):
    list_display = ["classic_value", "segment_policy", "window_months", "horizon_months", "updated_at"]

    def has_add_permission(self, request):
        return not ValuationPolicy.objects.exists()
