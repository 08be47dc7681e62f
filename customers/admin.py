from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from . import access
from .models import ApiToken, Customer, Transaction


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


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class CockpitUserAdmin(UserAdmin):
    """A manager edits users and their roles here, but grants no superuser status or single
    permissions, and leaves superusers alone (customers.access.may_administer_user)."""

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not access.may_grant_superuser(request.user):
            fields += ["is_superuser", "user_permissions"]
        return fields

    def has_change_permission(self, request, obj=None):
        if obj is not None and not access.may_administer_user(request.user, obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and not access.may_administer_user(request.user, obj):
            return False
        return super().has_delete_permission(request, obj)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are made by their users (the tokens page); here they can be seen and revoked."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_select_related = ["user"]
    readonly_fields = ["user", "name", "prefix", "key_hash", "created_at", "last_used_at", "expires_at"]

    def has_add_permission(self, request):
        return False
