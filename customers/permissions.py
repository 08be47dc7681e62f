"""The API's default permission, kept apart from the views (DRF imports it from settings)."""

from rest_framework.permissions import BasePermission

from .roles import role_of


class HasRole(BasePermission):
    """Deny by default: a login without a role (sales rep, inside sales, manager) reaches nothing."""

    def has_permission(self, request, view):
        return role_of(request.user) is not None
