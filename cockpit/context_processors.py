from django.conf import settings
from django.utils.functional import SimpleLazyObject

from customers.access import template_abilities
from customers.roles import role_of


def cockpit(request):
    """`cvm_role` for the header; `can` holds the abilities templates ask (customers.access)."""
    return {
        "cvm_role": role_of(request.user),
        "can": SimpleLazyObject(lambda: template_abilities(request.user)),
        "cvm_currency": settings.CVM_CURRENCY,
    }
