from decimal import Decimal

import pytest
from django.urls import reverse

from cockpit.selectors import customer_list_page
from tests.factories import CustomerFactory

from .factories import CustomerValueFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def book(manager, rep, other_rep, run):
    """Five customers: four valued in the latest run, one not valued yet."""
    rows = [
        ("N-100", "Anker Werke", rep, "Bavaria", "Chemicals", "problem", "B", "500.00"),
        ("N-200", "Brenner GmbH", rep, "Saxony", "Mechanical engineering", "investment", "A", "9000.00"),
        ("N-300", "Calor AG", other_rep, "Bavaria", "Mechanical engineering", "potential", "A", "7000.00"),
        ("N-400", "Dorn & Söhne", other_rep, "Hesse", "Food", "uncritical", "C", "100.00"),
    ]
    customers = {}
    for number, name, owner, region, industry, segment, abc, clv in rows:
        customer = CustomerFactory(number=number, name=name, owner=owner, region=region, industry=industry)
        CustomerValueFactory(run=run, customer=customer, segment=segment, abc_class=abc, clv=Decimal(clv))
        customers[number] = customer
    customers["N-500"] = CustomerFactory(number="N-500", name="Eule Neu KG", owner=rep, region="Bavaria", industry="Retail")
    return customers


def names(client, **params):
    response = client.get(reverse("customers:list"), params)
    assert response.status_code == 200
    return [c.name for c in response.context["page"].rows]


def test_filters_and_search(client, manager, rep, book):
    client.force_login(manager)
    assert names(client) == ["Anker Werke", "Brenner GmbH", "Calor AG", "Dorn & Söhne", "Eule Neu KG"]
    assert names(client, q="N-3") == ["Calor AG"]
    assert names(client, q="werke") == ["Anker Werke"]
    assert names(client, segment="problem") == ["Anker Werke"]
    assert names(client, abc_class="A") == ["Brenner GmbH", "Calor AG"]
    assert names(client, owner=rep.pk) == ["Anker Werke", "Brenner GmbH", "Eule Neu KG"]
    assert names(client, region="Bavaria") == ["Anker Werke", "Calor AG", "Eule Neu KG"]
    assert names(client, industry="Mechanical engineering", region="Bavaria") == ["Calor AG"]
    assert "No customer matches these filters" in client.get(reverse("customers:list"), {"q": "zzz"}).content.decode()


def test_sort_by_value_lists_unvalued_customers_last(client, manager, book):
    client.force_login(manager)
    assert names(client, sort="-clv") == ["Brenner GmbH", "Calor AG", "Anker Werke", "Dorn & Söhne", "Eule Neu KG"]
    assert names(client, sort="clv") == ["Dorn & Söhne", "Anker Werke", "Calor AG", "Brenner GmbH", "Eule Neu KG"]
    assert names(client, sort="-number")[0] == "Eule Neu KG"
    html = client.get(reverse("customers:list"), {"sort": "-clv"}).content.decode()
    assert "not valued yet" in html and 'aria-sort="descending"' in html


def test_rep_sees_own_customers_only(client, rep, book):
    client.force_login(rep)
    assert names(client) == ["Anker Werke", "Brenner GmbH", "Eule Neu KG"]
    assert names(client, owner=999) == ["Anker Werke", "Brenner GmbH", "Eule Neu KG"]  # no owner filter for reps


def test_inside_sales_cannot_sort_by_money(client, inside_sales, book):
    client.force_login(inside_sales)
    assert names(client, sort="-clv") == names(client)  # ignored: the order would leak the ranking
    assert names(client, sort="-value_to_customer")[-1] == "Eule Neu KG"


def test_paging_without_counting(manager, run):
    for i in range(30):
        customer = CustomerFactory(name=f"Kunde {i:02d}")
        if i % 3:
            CustomerValueFactory(run=run, customer=customer, clv=Decimal(i))
    first = customer_list_page(user=manager, filters={}, sort="-clv", page=1, page_size=10)
    assert first.has_next and not first.has_previous
    pages = [first.rows]
    page = first
    while page.has_next:
        page = customer_list_page(user=manager, filters={}, sort="-clv", page=page.number + 1, page_size=10)
        pages.append(page.rows)
    listed = [c.name for rows in pages for c in rows]
    assert len(listed) == 30 and len(set(listed)) == 30
    assert listed[:2] == ["Kunde 29", "Kunde 28"]
    assert listed[20:] == [f"Kunde {i:02d}" for i in range(0, 30, 3)]  # the unvalued ten, by name
    beyond = customer_list_page(user=manager, filters={}, sort="-clv", page=9, page_size=10)
    assert beyond.rows == [] and not beyond.has_next


def test_list_without_any_valuation(client, manager):
    CustomerFactory(name="Solo GmbH")
    client.force_login(manager)
    html = client.get(reverse("customers:list"), {"sort": "-clv"}).content.decode()
    assert "Solo GmbH" in html and "No valuation has been completed yet" in html


@pytest.mark.services
@pytest.mark.django_db
def test_the_search_indexes_keep_fine_statistics_on_postgresql():
    """The planner tells a number prefix matching a hundred customers from one matching
    thousands only with the finer statistics (customers migration 0007): both search
    indexes keep them."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no expression index statistics")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, a.attstattarget FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE c.relname IN ('customer_number_upper_idx', 'customer_name_upper_trgm_idx') AND a.attnum = 1"
        )
        assert dict(cursor.fetchall()) == {"customer_number_upper_idx": 1000, "customer_name_upper_trgm_idx": 1000}


@pytest.mark.services
@pytest.mark.django_db
def test_the_statistics_migration_runs_where_a_search_index_is_missing():
    """customers migration 0007 finer-tunes 0003's search indexes; on a database where one
    of them was dropped it must still migrate (and tune the one that is there), both ways."""
    import importlib

    from django.apps import apps
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no expression index statistics")
    migration = importlib.import_module("customers.migrations.0007_customer_search_statistics")
    with connection.cursor() as cursor:
        cursor.execute("DROP INDEX customer_number_upper_idx")
        cursor.execute("ALTER INDEX customer_name_upper_trgm_idx ALTER COLUMN 1 SET STATISTICS -1")
    with connection.schema_editor() as editor:
        migration.set_statistics(migration.TARGET)(apps, editor)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, a.attstattarget FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE c.relname IN ('customer_number_upper_idx', 'customer_name_upper_trgm_idx') AND a.attnum = 1"
        )
        assert dict(cursor.fetchall()) == {"customer_name_upper_trgm_idx": 1000}
    with connection.schema_editor() as editor:
        migration.set_statistics(-1)(apps, editor)
