"""Managers run the company's data, not the installation: no superuser status from the admin."""

import pytest
from django.contrib.auth.models import Group

from customers.roles import Role
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def change_form(user, **overrides) -> dict:
    data = {
        "username": user.username, "first_name": "", "last_name": "", "email": "", "is_active": "on",
        "is_staff": "", "groups": [Group.objects.get(name=Role.SALES_REP.value).pk],
        "last_login_0": "", "last_login_1": "", "date_joined_0": "2025-01-01", "date_joined_1": "10:00:00",
    }
    data.update(overrides)
    return data


def test_a_manager_cannot_grant_superuser_status(client, manager, rep):
    client.force_login(manager)
    page = client.get(f"/admin/auth/user/{rep.pk}/change/")
    assert page.status_code == 200 and 'name="is_superuser"' not in page.content.decode()
    response = client.post(
        f"/admin/auth/user/{rep.pk}/change/", change_form(rep, is_superuser="on", user_permissions=[1, 2])
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    rep.refresh_from_db()
    assert not rep.is_superuser and not rep.user_permissions.exists()


def test_a_manager_cannot_change_a_superuser(client, manager):
    root = make_user(None, username="root", is_superuser=True, is_staff=True)
    client.force_login(manager)
    assert client.get(f"/admin/auth/user/{root.pk}/change/").status_code in (403, 302, 200)
    assert client.post(f"/admin/auth/user/{root.pk}/change/", change_form(root, is_active="")).status_code == 403
    assert client.post(f"/admin/auth/user/{root.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"/admin/auth/user/{root.pk}/password/", {"password1": "Xy-12345678!", "password2": "Xy-12345678!"}).status_code == 403
    root.refresh_from_db()
    assert root.is_active and root.is_superuser


def test_a_superuser_still_can(client, rep):
    root = make_user(None, username="root", is_superuser=True, is_staff=True)
    client.force_login(root)
    assert 'name="is_superuser"' in client.get(f"/admin/auth/user/{rep.pk}/change/").content.decode()
