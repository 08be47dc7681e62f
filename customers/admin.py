from django.contrib import admin

from .models import Customer, Transaction


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["number", "name", "industry", "region", "owner", "status", "acquired_on"]
    list_filter = ["status", "industry", "region", "acquisition_channel"]
    search_fields = ["number", "name"]
    raw_id_fields = ["owner", "referred_by"]
    list_select_related = ["owner"]
    show_full_result_count = False


@admin.register(Transaction)
class TransactionAdmin(admin.ModelAdmin):
    list_display = ["external_id", "customer", "date", "revenue", "cost_of_goods", "product", "channel"]
    list_filter = ["channel"]
    search_fields = ["external_id", "customer__number"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]
    date_hierarchy = "date"
    show_full_result_count = False
