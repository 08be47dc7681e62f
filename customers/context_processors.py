from django.conf import settings

from .roles import role_of


def cockpit(request):
    return {"cvm_role": role_of(request.user), "cvm_currency": settings.CVM_CURRENCY}
