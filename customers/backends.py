from django.contrib.auth.backends import BaseBackend

from .access import manages

# What a manager administers; everything else stays with superusers.
MANAGED_APPS = {"customers", "services", "valuation", "auth", "authtoken", "axes"}


class RolePermissionBackend(BaseBackend):
    """Managers hold every permission of the cockpit's apps, without per-model grants."""

    def has_perm(self, user_obj, perm, obj=None):
        return self.has_module_perms(user_obj, perm.split(".", 1)[0])

    def has_module_perms(self, user_obj, app_label):
        return bool(user_obj.is_active) and app_label in MANAGED_APPS and manages(user_obj)
