"""Our own 403, 404 and 500 pages, styled and in the reader's language."""

import pytest
from django.urls import reverse
from django.utils import translation

pytestmark = pytest.mark.django_db

GERMAN = {"HTTP_ACCEPT_LANGUAGE": "de"}


@pytest.mark.parametrize(
    ("language", "title"), [("en", "Not allowed"), ("de", "Nicht erlaubt")]
)
def test_403_is_a_styled_page_in_the_users_language(client, rep, language, title):
    client.force_login(rep)
    response = client.get(reverse("valuation:settings"), HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 403
    html = response.content.decode()
    assert "css/cockpit.css" in html and 'class="topbar"' in html
    assert f'<h1 id="error-title">{title}</h1>' in html
    assert f'<html lang="{language}">' in html


@pytest.mark.parametrize(
    ("language", "title"), [("en", "Page not found"), ("de", "Seite nicht gefunden")]
)
def test_404_is_a_styled_page_in_the_users_language(client, rep, language, title):
    client.force_login(rep)
    response = client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 404
    html = response.content.decode()
    assert "css/cockpit.css" in html
    assert f'<h1 id="error-title">{title}</h1>' in html
    assert reverse("home") in html


@pytest.mark.parametrize(
    ("language", "title"), [("en", "Something went wrong"), ("de", "Etwas ist schiefgegangen")]
)
def test_500_is_a_static_styled_page(rf, language, title, django_assert_num_queries):
    from cvm.views import server_error

    with translation.override(language), django_assert_num_queries(0):
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            response = server_error(rf.get("/"))
    html = response.content.decode()
    assert response.status_code == 500
    assert "css/cockpit.css" in html and f"<h1 id=\"error-title\">{title}</h1>" in html
    assert f'<html lang="{language}">' in html
    assert "boom" not in html
