"""Who may do what through the API: the same rules as the pages, for every endpoint and role."""

import datetime as dt

import pytest

from customers.models import Customer, Transaction
from services.models import ServiceEvent

from .conftest import results

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "rep", "other_rep", "inside_sales", "manager"]
MONEY = {"revenue_window", "margin_window", "margin_lifetime", "clv", "profit_after_services", "p_alive", "abc_class"}


def url_for(name: str, world) -> str:
    mine, event = world["mine"][0], world["mine_event"]
    return {
        "customers": "/api/v1/customers/",
        "customer": f"/api/v1/customers/{mine.pk}/",
        "customer_values": f"/api/v1/customers/{mine.pk}/values/",
        "transactions": "/api/v1/transactions/",
        "transaction": f"/api/v1/transactions/{mine.transactions.get().pk}/",
        "service_types": "/api/v1/service-types/",
        "standard_costs": "/api/v1/standard-costs/",
        "service_events": "/api/v1/service-events/",
        "service_event": f"/api/v1/service-events/{event.pk}/",
        "service_event_history": f"/api/v1/service-events/{event.pk}/history/",
        "values": "/api/v1/values/",
        "value": f"/api/v1/values/{mine.pk}/",
        "segments": "/api/v1/segments/",
        "runs": "/api/v1/valuation-runs/",
        "run": f"/api/v1/valuation-runs/{world['runs'][1].pk}/",
    }[name]


# Reads of an object owned by rep_a: other_rep gets 404 (not visible), inside sales 403 for money resources.
READS = {
    "customers": [401, 200, 200, 200, 200],
    "customer": [401, 200, 404, 200, 200],
    "customer_values": [401, 200, 404, 200, 200],
    "transactions": [401, 200, 200, 403, 200],
    "transaction": [401, 200, 404, 403, 200],
    "service_types": [401, 200, 200, 200, 200],
    "standard_costs": [401, 200, 200, 200, 200],
    "service_events": [401, 200, 200, 200, 200],
    "service_event": [401, 200, 404, 200, 200],
    "service_event_history": [401, 200, 404, 200, 200],
    "values": [401, 200, 200, 200, 200],
    "value": [401, 200, 404, 200, 200],
    "segments": [401, 200, 200, 200, 200],
    "runs": [401, 200, 200, 200, 200],
    "run": [401, 200, 200, 200, 200],
}


@pytest.mark.parametrize("endpoint", sorted(READS))
def test_read_permissions(clients, world, endpoint):
    url = url_for(endpoint, world)
    got = [clients[role].get(url).status_code for role in ROLES]
    assert got == READS[endpoint], dict(zip(ROLES, got, strict=False))


def test_anonymous_gets_401_with_token_challenge(clients):
    response = clients["anonymous"].get("/api/v1/customers/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")


def test_user_without_role_gets_403(db):
    from tests.api.conftest import client_for
    from tests.factories import UserFactory

    assert client_for(UserFactory(username="nobody")).get("/api/v1/customers/").status_code == 403


def test_rep_lists_only_own_customers_everywhere(clients, world, rep):
    client = clients["rep"]
    mine = {c.pk for c in world["mine"]}
    assert {row["id"] for row in results(client.get("/api/v1/customers/"))} == mine
    assert {row["customer"] for row in results(client.get("/api/v1/transactions/"))} == mine
    assert {row["customer"] for row in results(client.get("/api/v1/service-events/"))} <= mine
    assert {row["customer"] for row in results(client.get("/api/v1/values/"))} == mine
    # a filter cannot widen the view
    other = world["theirs"][0]
    assert results(client.get("/api/v1/customers/", {"number": other.number})) == []
    assert results(client.get("/api/v1/transactions/", {"customer": other.pk})) == []
    segments = client.get("/api/v1/segments/").json()["segments"]
    assert sum(row["customers"] for row in segments) == 2


def test_inside_sales_sees_no_money_fields(clients, world):
    client = clients["inside_sales"]
    values = results(client.get("/api/v1/values/"))
    assert len(values) == 4
    for row in values:
        assert not MONEY & set(row), row
        assert {"segment", "strategy", "value_to_customer", "service_count"} <= set(row)
    history = results(client.get(url_for("customer_values", world)))
    assert history and not MONEY & set(history[0])
    for row in client.get("/api/v1/segments/").json()["segments"]:
        assert set(row) == {"segment", "label", "strategy", "customers", "service_cost"}
    customers = results(client.get("/api/v1/customers/"))
    assert customers and all("yearly_wallet" not in row for row in customers)
    # ordering by a money figure is ignored for inside sales (it would leak the ranking)
    by_clv = results(client.get("/api/v1/values/", {"ordering": "-clv"}))
    assert [row["customer_name"] for row in by_clv] == sorted(row["customer_name"] for row in by_clv)


def test_rep_and_manager_see_money_fields(clients, world):
    for role in ("rep", "manager"):
        row = results(clients[role].get("/api/v1/values/"))[0]
        assert set(row) >= MONEY
        assert row["clv"] == "3000.00"


WRITE_CASES = [
    # (method, endpoint, body, expected per role); roles that may never write get 403 before any lookup
    ("post", "customers", {"number": "N-1", "name": "New GmbH"}, [401, 403, 403, 403, 201]),
    ("patch", "customer", {"name": "Renamed"}, [401, 403, 403, 403, 200]),
    ("delete", "customer", None, [401, 403, 403, 403, 204]),
    ("patch", "transaction", {"revenue": "1.00"}, [401, 403, 403, 403, 200]),
    ("delete", "transaction", None, [401, 403, 403, 403, 204]),
    ("post", "standard_costs", {"service_type": "hotline", "valid_from": "2025-06-01", "cost_per_unit": "70.00"},
     [401, 403, 403, 403, 201]),
    ("post", "runs", None, [401, 403, 403, 403, 202]),
]


@pytest.mark.parametrize(("method", "endpoint", "body", "expected"), WRITE_CASES, ids=[f"{m}-{e}" for m, e, *_ in WRITE_CASES])
def test_write_permissions(clients, world, monkeypatch, method, endpoint, body, expected):
    from valuation import tasks
    from valuation.models import ValuationRun

    monkeypatch.setattr(
        tasks, "request_recompute",
        lambda *, user=None, as_of=None: ValuationRun.objects.create(as_of=dt.date(2025, 3, 31), trigger="manual"),
    )
    url = url_for(endpoint, world)
    got = []
    for role in ROLES:  # manager last: its write may delete the object
        response = getattr(clients[role], method)(url, body, format="json")
        got.append(response.status_code)
    assert got == expected, dict(zip(ROLES, got, strict=False))


def test_transaction_create_is_manager_only(clients, world):
    body = {"external_id": "X-1", "customer": world["mine"][0].pk, "date": "2025-01-05", "revenue": "10.00"}
    assert clients["rep"].post("/api/v1/transactions/", body, format="json").status_code == 403
    assert clients["inside_sales"].post("/api/v1/transactions/", body, format="json").status_code == 403
    response = clients["manager"].post("/api/v1/transactions/", body, format="json")
    assert response.status_code == 201, response.json()
    assert Transaction.objects.get(external_id="X-1").revenue == 10


class TestServiceEvents:
    def body(self, customer):
        return {"customer": customer.pk, "service_type": "training", "date": "2025-02-03", "quantity": "0.5",
                "note": "Seminar"}

    def test_rep_logs_for_own_customers_only(self, clients, world, rep):
        response = clients["rep"].post("/api/v1/service-events/", self.body(world["mine"][0]), format="json")
        assert response.status_code == 201, response.json()
        assert response.json()["logged_by"] == "rep_a"
        assert response.json()["value"] == "475.0000"  # 0.5 days x 950
        response = clients["rep"].post("/api/v1/service-events/", self.body(world["theirs"][0]), format="json")
        assert response.status_code == 400
        assert "customer" in response.json()

    def test_inside_sales_logs_for_all_customers(self, clients, world):
        for customer in world["mine"] + world["theirs"]:
            response = clients["inside_sales"].post("/api/v1/service-events/", self.body(customer), format="json")
            assert response.status_code == 201

    def test_only_own_entries_are_changed_except_by_managers(self, clients, world):
        inside_event, rep_event = world["inside_event"], world["mine_event"]
        change = {"note": "corrected"}
        # inside sales: own entry yes, the rep's entry no
        assert clients["inside_sales"].patch(f"/api/v1/service-events/{inside_event.pk}/", change, format="json").status_code == 200
        assert clients["inside_sales"].patch(f"/api/v1/service-events/{rep_event.pk}/", change, format="json").status_code == 403
        assert clients["inside_sales"].delete(f"/api/v1/service-events/{rep_event.pk}/").status_code == 403
        # the rep sees the inside-sales entry on the rep's customer but may not change it
        assert clients["rep"].get(f"/api/v1/service-events/{inside_event.pk}/").status_code == 200
        assert clients["rep"].patch(f"/api/v1/service-events/{inside_event.pk}/", change, format="json").status_code == 403
        assert clients["rep"].patch(f"/api/v1/service-events/{rep_event.pk}/", change, format="json").status_code == 200
        # managers change and delete anything
        assert clients["manager"].patch(f"/api/v1/service-events/{rep_event.pk}/", {"quantity": "2"}, format="json").status_code == 200
        assert clients["manager"].delete(f"/api/v1/service-events/{inside_event.pk}/").status_code == 204
        assert not ServiceEvent.objects.filter(pk=inside_event.pk).exists()

    def test_history_records_who_changed_what(self, clients, world):
        event = world["mine_event"]
        clients["rep"].patch(f"/api/v1/service-events/{event.pk}/", {"quantity": "3.00"}, format="json")
        clients["manager"].patch(f"/api/v1/service-events/{event.pk}/", {"note": "checked"}, format="json")
        history = results(clients["rep"].get(f"/api/v1/service-events/{event.pk}/history/"))
        assert [(h["history_type"], h["history_user"], h["quantity"], h["note"]) for h in history] == [
            ("~", "boss", "3.00", "checked"), ("~", "rep_a", "3.00", ""), ("+", None, "1.00", ""),
        ]

    def test_implausible_values_are_rejected(self, clients, world):
        body = self.body(world["mine"][0])
        for field, value in [("quantity", "-1"), ("quantity", "0"), ("date", "1989-12-31"),
                             ("date", (dt.date.today() + dt.timedelta(days=5)).isoformat()),
                             ("service_type", "nope")]:
            response = clients["manager"].post("/api/v1/service-events/", {**body, field: value}, format="json")
            assert response.status_code == 400 and field in response.json(), (field, value, response.json())

    def test_external_id_is_unique(self, clients, world):
        body = {**self.body(world["mine"][0]), "external_id": "TICKET-1"}
        assert clients["manager"].post("/api/v1/service-events/", body, format="json").status_code == 201
        response = clients["manager"].post("/api/v1/service-events/", body, format="json")
        assert response.status_code == 400 and "external_id" in response.json()


def test_customer_validation(clients, world):
    client = clients["manager"]
    response = client.post("/api/v1/customers/", {"number": "L1", "name": "Lost", "status": "lost"}, format="json")
    assert response.status_code == 400 and "lost_on" in response.json()
    mine = world["mine"][0]
    response = client.patch(f"/api/v1/customers/{mine.pk}/", {"referred_by": mine.pk}, format="json")
    assert response.status_code == 400 and "referred_by" in response.json()
    response = client.post("/api/v1/customers/", {"number": "W1", "name": "W", "yearly_wallet": "-1"}, format="json")
    assert response.status_code == 400 and "yearly_wallet" in response.json()
    assert not Customer.objects.filter(number__in=["L1", "W1"]).exists()


class TestTrigger:
    def test_conflict_and_queue_down(self, clients, monkeypatch):
        from valuation import services, tasks

        def running(**kwargs):
            raise services.RunAlreadyRunning("A valuation run is already in progress.")

        def queue_down(**kwargs):
            raise services.QueueUnavailable("Redis unreachable")

        monkeypatch.setattr(tasks, "request_recompute", running)
        response = clients["manager"].post("/api/v1/valuation-runs/")
        assert response.status_code == 409 and "already" in response.json()["detail"]
        monkeypatch.setattr(tasks, "request_recompute", queue_down)
        response = clients["manager"].post("/api/v1/valuation-runs/")
        assert response.status_code == 503 and "queue is unavailable" in response.json()["detail"]

    def test_run_detail_shows_progress(self, clients, db):
        from valuation.models import ValuationChunk, ValuationRun

        run = ValuationRun.objects.create(as_of=dt.date(2025, 3, 31), stage="scoring", chunk_count=4)
        for first, status in [(1, "done"), (100, "done"), (200, "pending"), (300, "pending")]:
            ValuationChunk.objects.create(run=run, first_customer_id=first, last_customer_id=first + 99, status=status)
        data = clients["rep"].get(f"/api/v1/valuation-runs/{run.pk}/").json()
        assert (data["status"], data["stage"], data["chunks_done"], data["progress"]) == ("running", "scoring", 2, 0.5)


def test_nul_and_surrogate_characters_answer_400_not_500(clients, world):
    """Found by the schemathesis run on PostgreSQL, which cannot store or compare NUL characters."""
    import json

    client = clients["manager"]

    def send(method, url, body):
        # json.dumps escapes a lone surrogate as \ud800, as a fuzzing client would send it
        return client.generic(method, url, json.dumps(body), content_type="application/json")

    for value in ["a\x00b", "a\ud800b"]:
        body = {"valid_from": "2020-01-01", "service_type": value, "cost_per_unit": "1"}
        response = send("POST", "/api/v1/standard-costs/", body)
        assert response.status_code == 400 and "service_type" in response.json()
        response = send("PATCH", f"/api/v1/customers/{world['mine'][0].pk}/", {"owner": value})
        assert response.status_code == 400 and "owner" in response.json()
    assert client.get("/api/v1/customers/", {"number": "a\x00b"}).status_code == 400
    assert client.get("/api/v1/service-events/", {"service_type": "a\x00b"}).status_code == 400


def test_history_shows_no_versions_from_another_reps_customer(clients, world, client, rep):
    """Inside sales logs a note on rep B's customer, then moves the entry to rep A's customer:
    rep A must not read the note or the customer id from the time it belonged to rep B."""
    created = clients["inside_sales"].post(
        "/api/v1/service-events/",
        {"customer": world["theirs"][0].pk, "service_type": "hotline", "date": "2025-02-03", "note": "B's secret"},
        format="json",
    ).json()
    moved = clients["inside_sales"].patch(
        f"/api/v1/service-events/{created['id']}/", {"customer": world["mine"][0].pk, "note": "moved"}, format="json"
    )
    assert moved.status_code == 200
    history = results(clients["rep"].get(f"/api/v1/service-events/{created['id']}/history/"))
    assert [h["note"] for h in history] == ["moved"]
    assert {h["customer"] for h in history} == {world["mine"][0].pk}
    assert len(results(clients["manager"].get(f"/api/v1/service-events/{created['id']}/history/"))) == 2
    client.force_login(rep)
    page = client.get(f"/services/events/{created['id']}/history/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "B&#x27;s secret" not in html and "B's secret" not in html
    assert world["theirs"][0].name not in html


@pytest.mark.parametrize("path", ["/api/v1/transactions/", "/api/v1/service-events/", "/api/v1/values/"])
def test_a_rep_cannot_tell_another_reps_customer_from_an_unknown_id(clients, world, path):
    theirs = clients["rep"].get(path, {"customer": world["theirs"][0].pk})
    unknown = clients["rep"].get(path, {"customer": 987654})
    assert theirs.status_code == unknown.status_code == 200
    assert theirs.json() == unknown.json() and results(theirs) == []
    assert len(results(clients["rep"].get(path, {"customer": world["mine"][0].pk}))) >= 1
    assert clients["rep"].get(path, {"customer": "x"}).status_code == 400
