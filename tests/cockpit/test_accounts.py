"""Accounts users run themselves: password change and reset, API tokens; managers run users."""

import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from customers.models import ApiToken
from customers.roles import Role, role_of
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
User = get_user_model()


def test_every_user_changes_their_own_password(client, rep):
    rep.set_password("old-Secret-123")
    rep.save()
    client.force_login(rep)
    response = client.post("/account/password/", {
        "old_password": "old-Secret-123", "new_password1": "Fresh-Secret-456", "new_password2": "Fresh-Secret-456",
    })
    assert response.status_code == 302 and response["Location"] == "/account/password/done/"
    rep.refresh_from_db()
    assert rep.check_password("Fresh-Secret-456")
    assert "Your password was changed" in client.get("/account/password/done/").content.decode()


def test_a_forgotten_password_is_reset_by_mail(client, rep):
    rep.email = "rep@example.com"
    rep.save()
    assert 'href="/account/password-reset/"' in client.get("/login/").content.decode()
    response = client.post("/account/password-reset/", {"email": "rep@example.com"})
    assert response.status_code == 302 and len(mail.outbox) == 1
    link = re.search(r"http://testserver(/account/password-reset/\S+/)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200 and "new_password1" in form_page.content.decode()
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": "Reset-Secret-789", "new_password2": "Reset-Secret-789"})
    assert done.status_code == 302
    rep.refresh_from_db()
    assert rep.check_password("Reset-Secret-789")
    # an unknown address sends nothing and says the same
    assert client.post("/account/password-reset/", {"email": "nobody@example.com"}).status_code == 302
    assert len(mail.outbox) == 1


def test_a_user_makes_uses_and_revokes_a_token(client, rep):
    client.force_login(rep)
    page = client.post("/account/tokens/", {"name": "Nightly ERP sync", "lifetime": "30"})
    html = page.content.decode()
    key = re.search(r'<code class="token-key">(cvm_[^<]+)</code>', html).group(1)
    assert "shown only this once" in html and page["Cache-Control"] == "no-store"
    token = ApiToken.objects.get(user=rep)
    assert token.name == "Nightly ERP sync" and token.key_hash != key and key not in str(token.__dict__)
    assert dt.timedelta(days=29) < token.expires_at - timezone.now() <= dt.timedelta(days=30)
    api = APIClient(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/customers/").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    listing = client.get("/account/tokens/").content.decode()
    assert "Nightly ERP sync" in listing and key not in listing and "never" not in listing
    client.post(f"/account/tokens/{token.pk}/revoke/")
    assert api.get("/api/v1/customers/").status_code == 401
    assert "Nightly ERP sync" not in client.get("/account/tokens/").content.decode()


def test_expired_and_foreign_tokens(client, rep, other_rep):
    from customers.tokens import issue_token

    token, key = issue_token(user=rep, name="old")
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = APIClient(HTTP_AUTHORIZATION=f"Token {key}").get("/api/v1/customers/")
    assert response.status_code == 401 and response.json()["detail"] == "Token expired."
    client.force_login(other_rep)
    client.post(f"/account/tokens/{token.pk}/revoke/")  # not theirs: nothing happens
    token.refresh_from_db()
    assert token.revoked_at is None


def test_managers_run_users_and_roles_but_no_superusers(client, manager, rep):
    root = make_user(None, username="root", is_superuser=True, is_staff=True)
    client.force_login(manager)
    listing = client.get("/account/users/").content.decode()
    assert "rep_a" in listing and "root" not in listing
    form = client.get("/account/users/new/").content.decode()
    assert "is_superuser" not in form and "is_staff" not in form
    response = client.post("/account/users/new/", {
        "username": "rep_c", "email": "c@example.com", "role": Role.SALES_REP.value, "is_active": "on",
        "is_superuser": "on", "is_staff": "on",
    })
    assert response.status_code == 302
    created = User.objects.get(username="rep_c")
    assert role_of(created) == Role.SALES_REP and not created.is_superuser and not created.is_staff
    assert not created.has_usable_password()
    client.post(f"/account/users/{rep.pk}/", {"username": "rep_a", "role": Role.INSIDE_SALES.value, "is_active": "on"})
    rep = User.objects.get(pk=rep.pk)
    assert role_of(rep) == Role.INSIDE_SALES
    assert client.get(f"/account/users/{root.pk}/").status_code == 404
    assert client.post(f"/account/users/{root.pk}/", {"username": "root", "is_active": ""}).status_code == 404
    root.refresh_from_db()
    assert root.is_active


@pytest.mark.parametrize("role", ["rep", "inside_sales"])
def test_only_managers_run_users(client, request, role):
    client.force_login(request.getfixturevalue(role))
    assert client.get("/account/users/").status_code == 403
    assert client.get("/account/tokens/").status_code == 200


def test_account_pages_need_a_login(client):
    for url in ["/account/tokens/", "/account/password/", "/account/users/"]:
        assert client.get(url).status_code == 302
