from django.contrib import admin

from customers.access import manages


class CockpitAdminSite(admin.AdminSite):
    """The admin is a manager's tool: staff status alone does not open it."""

    site_header = "CVM Cockpit"
    site_title = "CVM Cockpit"

    def has_permission(self, request):
        return super().has_permission(request) and manages(request.user)
