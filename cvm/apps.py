from django.contrib.admin.apps import AdminConfig


class CockpitAdminConfig(AdminConfig):
    default_site = "cvm.admin.CockpitAdminSite"
