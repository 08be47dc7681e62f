"""The demo company: the variety seed_demo promises, checked with real queries."""

import re
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from io import StringIO
from statistics import median

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.models import Count, F, Max, Sum
from django.db.models.functions import ExtractMonth

from cockpit.demo import COST_CHANGE_PERCENT, DEMO_PASSWORD, cost_change_day
from customers.models import Customer, Transaction
from customers.roles import Role
from services.models import ServiceEvent, ServiceType, StandardCost
from services.selectors import service_event_value
from tests.factories import CustomerFactory, TransactionFactory

AS_OF = date(2025, 6, 30)
SIZE = 300
SEED = 7
ARGS = ["--customers", str(SIZE), "--seed", str(SEED), "--as-of", AS_OF.isoformat(), "--history-months", "0"]
YEAR_AGO = AS_OF - timedelta(days=365)

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module", autouse=True)
def seeded(django_db_setup, django_db_blocker):
    """Seed once for the module inside a transaction that is rolled back at the end."""
    with django_db_blocker.unblock(), transaction.atomic():
        out = StringIO()
        call_command("seed_demo", *ARGS, stdout=out)
        yield out.getvalue()
        transaction.set_rollback(True)


def seed(*extra, stdout=None):
    call_command("seed_demo", *ARGS, *extra, stdout=stdout or StringIO())


def signature():
    """What two runs with the same seed must share."""
    transactions = Transaction.objects.filter(customer__is_demo=True)
    events = ServiceEvent.objects.filter(customer__is_demo=True)
    money = transactions.aggregate(revenue=Sum("revenue"), cost=Sum("cost_of_goods"))
    return {
        "customers": sorted(Customer.objects.filter(is_demo=True).values_list(
            "number", "name", "industry", "region", "owner__username", "acquired_on", "acquisition_channel",
            "referred_by__number", "status", "lost_on", "yearly_wallet")),
        "transactions": transactions.count(),
        "revenue": round(Decimal(money["revenue"]), 2),
        "cost": round(Decimal(money["cost"]), 2),
        "events": sorted(events.values_list("customer__number", "service_type__code", "date", "quantity", "note")),
    }


def trailing_year_values():
    """Per demo customer: margin and standard cost of free services in the trailing 12 months."""
    margin = defaultdict(Decimal)
    service = defaultdict(Decimal)
    for row in (Transaction.objects.filter(customer__is_demo=True, date__gt=YEAR_AGO, date__lte=AS_OF)
                .values("customer_id").annotate(margin=Sum(F("revenue") - F("cost_of_goods")))):
        margin[row["customer_id"]] = Decimal(row["margin"])
    events = ServiceEvent.objects.filter(customer__is_demo=True, date__gt=YEAR_AGO, date__lte=AS_OF)
    for row in service_event_value(events).values("customer_id").annotate(total=Sum("value")):
        service[row["customer_id"]] = Decimal(row["total"])
    ids = list(Customer.objects.filter(is_demo=True).values_list("id", flat=True))
    return {pk: (margin[pk], service[pk]) for pk in ids}


def test_counts_are_near_the_targets_and_skewed():
    customers = Customer.objects.filter(is_demo=True)
    assert customers.count() == SIZE
    per_customer = list(customers.annotate(n=Count("transactions")).values_list("n", flat=True))
    assert 35 <= sum(per_customer) / SIZE <= 70
    # Very skewed: the top tenth of customers holds far more lines than the median customer.
    top = sorted(per_customer)[int(SIZE * 0.9)]
    assert top > 3 * median(per_customer)
    events = ServiceEvent.objects.filter(customer__is_demo=True).count()
    assert 6 <= events / SIZE <= 15


def test_customers_look_like_a_b2b_customer_base():
    customers = Customer.objects.filter(is_demo=True)
    numbers = list(customers.values_list("number", flat=True))
    assert all(re.fullmatch(r"C\d{6}", n) for n in numbers)
    assert customers.values("industry").distinct().count() >= 6
    assert customers.values("region").distinct().count() >= 5
    names = list(customers.values_list("name", flat=True))
    assert all(re.search(r" (GmbH|AG|KG|e\.K\.|OHG|SE|Ltd|UG \(haftungsbeschränkt\)|S\.à r\.l\.)$", n) for n in names)
    assert len(set(names)) > 0.9 * SIZE
    channels = set(customers.values_list("acquisition_channel", flat=True))
    assert {"referral", "direct_sales", "trade_fair"} <= channels
    wallets = customers.filter(yearly_wallet__isnull=False).count()
    assert 0.45 * SIZE <= wallets <= 0.75 * SIZE
    lost = customers.filter(status=Customer.Status.LOST)
    assert 0 < lost.count() < 0.2 * SIZE
    assert not lost.filter(lost_on__isnull=True).exists()
    # Acquired at various times: before the history, during it, and in the last months.
    assert customers.filter(acquired_on__lt=AS_OF - timedelta(days=3 * 365)).exists()
    assert customers.filter(acquired_on__gt=AS_OF - timedelta(days=120)).exists()
    owners = set(customers.values_list("owner__username", flat=True))
    assert owners == {"rep1", "rep2", "rep3", "rep4", "rep5"}


def test_wallet_is_consistent_with_spend():
    """Share of supply (yearly spend / wallet) lies between about 10 % and 100 %."""
    rows = (Customer.objects.filter(is_demo=True, yearly_wallet__isnull=False, status=Customer.Status.ACTIVE,
                                    acquired_on__lt=AS_OF - timedelta(days=3 * 365))
            .annotate(revenue=Sum("transactions__revenue")).values_list("yearly_wallet", "revenue"))
    shares = sorted(float(revenue) / 3 / float(wallet) for wallet, revenue in rows if revenue)
    assert len(shares) > 20
    assert 0.1 <= median(shares) <= 0.8
    assert shares[int(len(shares) * 0.9)] <= 1.3


def test_money_has_cents_and_margins_vary():
    sample = list(Transaction.objects.filter(customer__is_demo=True).values_list("revenue", "cost_of_goods")[:500])
    assert all(r.as_tuple().exponent == -2 and c.as_tuple().exponent == -2 for r, c in sample)
    assert Transaction.objects.filter(customer__is_demo=True, revenue__lte=0).count() == 0
    margins = (Customer.objects.filter(is_demo=True).annotate(revenue=Sum("transactions__revenue"),
                                                               cost=Sum("transactions__cost_of_goods"))
               .filter(revenue__gt=0).values_list("revenue", "cost"))
    rates = [1 - float(cost) / float(revenue) for revenue, cost in margins]
    assert any(rate < 0.03 for rate in rates), "a few customers bring (almost) no margin"
    assert any(rate > 0.3 for rate in rates)
    # Several lines of one customer on the same day.
    assert (Transaction.objects.filter(customer__is_demo=True).values("customer_id", "date")
            .annotate(n=Count("id")).filter(n__gt=1).exists())


def test_demo_logins_have_their_roles_and_can_log_in(client):
    User = get_user_model()
    expected = {**{f"rep{i}": Role.SALES_REP for i in range(1, 6)}, "inside": Role.INSIDE_SALES,
                "manager": Role.MANAGER}
    for username, role in expected.items():
        user = User.objects.get(username=username)
        assert list(user.groups.values_list("name", flat=True)) == [role.value]
        assert user.first_name and user.last_name
        assert user.is_staff == (role is Role.MANAGER)
        assert client.login(username=username, password=DEMO_PASSWORD)
        client.logout()


def test_command_prints_logins_and_rates(seeded):
    for username in ("rep1", "rep5", "inside", "manager"):
        assert username in seeded
    assert DEMO_PASSWORD in seeded
    assert seeded.count("rows/s") == 3


def test_all_four_segments_occur_clearly():
    values = trailing_year_values()
    margin_median = median(m for m, _ in values.values())
    service_median = median(s for _, s in values.values())
    quadrants = defaultdict(int)
    for margin, service in values.values():
        quadrants[(margin > margin_median, service > service_median)] += 1
    # uncritical, problem group, check potential, investment customers
    for quadrant in [(False, False), (False, True), (True, False), (True, True)]:
        assert quadrants[quadrant] >= 0.05 * SIZE, (quadrant, dict(quadrants))


def test_silent_churners_are_still_active():
    half_year_ago = AS_OF - timedelta(days=182)
    churners = (Customer.objects.filter(is_demo=True, status=Customer.Status.ACTIVE)
                .annotate(last=Max("transactions__date"), days=Count("transactions__date", distinct=True))
                .filter(last__lt=half_year_ago, days__gte=3))
    assert churners.count() >= 0.03 * SIZE


def test_some_customers_bought_only_once():
    once = (Customer.objects.filter(is_demo=True, acquired_on__gte=AS_OF - timedelta(days=3 * 365))
            .annotate(days=Count("transactions__date", distinct=True)).filter(days=1))
    assert once.exists()


def test_new_customers_grow_fast():
    new = Customer.objects.filter(is_demo=True, acquired_on__gt=YEAR_AGO)
    revenue = defaultdict(lambda: [Decimal(0), Decimal(0)])
    acquired = dict(new.values_list("id", "acquired_on"))
    for customer_id, day, amount in Transaction.objects.filter(customer__in=new).values_list(
            "customer_id", "date", "revenue"):
        if day < acquired[customer_id] + timedelta(days=90):
            revenue[customer_id][0] += amount
        if day > AS_OF - timedelta(days=90):
            revenue[customer_id][1] += amount
    growing = [pk for pk, (first, latest) in revenue.items()
               if acquired[pk] < AS_OF - timedelta(days=180) and first > 0 and latest >= 2 * first]
    assert len(growing) >= 3


def test_referral_chains():
    referred = Customer.objects.filter(is_demo=True, referred_by__isnull=False)
    assert referred.count() >= 0.08 * SIZE
    assert not referred.exclude(acquisition_channel=Customer.Channel.REFERRAL).exists()
    assert not referred.filter(acquired_on__lt=F("referred_by__acquired_on")).exists()
    assert referred.filter(referred_by__referred_by__isnull=False).exists(), "a chain A -> B -> C"


def test_revenue_is_seasonal():
    by_month = dict(Transaction.objects.filter(customer__is_demo=True).annotate(month=ExtractMonth("date"))
                    .values("month").annotate(revenue=Sum("revenue")).values_list("month", "revenue"))
    assert len(by_month) == 12
    weakest, strongest = min(by_month.values()), max(by_month.values())
    assert weakest < Decimal("0.75") * strongest
    assert by_month[8] < by_month[3] and by_month[12] < by_month[10]


def test_cost_change_values_events_before_and_after_differently():
    change = cost_change_day(AS_OF)
    assert change.day == 1
    assert AS_OF - timedelta(days=18.5 * 30.4) <= change <= AS_OF - timedelta(days=17.5 * 30.4)
    changed = StandardCost.objects.filter(valid_from=change)
    assert set(changed.values_list("service_type__code", flat=True)) == set(COST_CHANGE_PERCENT)
    hotline = ServiceEvent.objects.filter(customer__is_demo=True, service_type__code="hotline")
    before = set(service_event_value(hotline.filter(date__lt=change)).values_list("unit_cost", flat=True))
    after = set(service_event_value(hotline.filter(date__gte=change)).values_list("unit_cost", flat=True))
    assert len(before) == len(after) == 1
    assert after.pop() > before.pop()


def test_service_events_are_plausible():
    events = ServiceEvent.objects.filter(customer__is_demo=True)
    assert events.filter(quantity__lte=0).count() == 0
    for unit, low, high in [("hour", "0.25", "4"), ("day", "0.5", "3"), ("occurrence", "1", "3")]:
        quantities = set(events.filter(service_type__unit=unit).values_list("quantity", flat=True))
        assert quantities and min(quantities) >= Decimal(low) and max(quantities) <= Decimal(high)
        assert all(q == q.quantize(Decimal("0.01")) for q in quantities)
    assert all(q == int(q) for q in events.filter(service_type__unit="occurrence").values_list("quantity", flat=True))
    assert events.values("service_type").distinct().count() == ServiceType.objects.count()
    assert not events.filter(note="").exists()
    assert events.filter(note__startswith="Hotline: ").exists()
    assert set(events.values_list("logged_by__username", flat=True)) >= {"inside", "rep1"}
    # Within the customer's life: never before it was won, never after as-of or after it was lost.
    assert not events.filter(date__lt=F("customer__acquired_on")).exists()
    assert not events.filter(date__gt=AS_OF).exists()
    assert not events.filter(customer__lost_on__isnull=False, date__gt=F("customer__lost_on")).exists()
    assert not Transaction.objects.filter(customer__is_demo=True, date__gt=AS_OF).exists()


def test_external_ids_are_unique():
    transactions = Transaction.objects.filter(customer__is_demo=True)
    assert transactions.values("external_id").distinct().count() == transactions.count()
    assert not transactions.exclude(external_id__startswith="DEMO-").exists()


def test_rerun_is_reproducible_and_replaces_demo_data():
    User = get_user_model()
    first = signature()
    users = User.objects.count()
    out = StringIO()
    seed(stdout=out)
    assert f"Replaced {SIZE} demo customers" in out.getvalue()
    assert signature() == first
    assert User.objects.count() == users
    assert StandardCost.objects.filter(valid_from=cost_change_day(AS_OF)).count() == len(COST_CHANGE_PERCENT)


def test_another_seed_gives_other_data():
    first = signature()
    call_command("seed_demo", "--customers", str(SIZE), "--seed", str(SEED + 1), "--as-of", AS_OF.isoformat(), "--history-months", "0",
                 stdout=StringIO())
    assert signature()["revenue"] != first["revenue"]


def test_refuses_real_data_without_force_and_keeps_it_with_force():
    real = TransactionFactory(customer=CustomerFactory(number=f"C{SIZE + 1:06d}"))
    with pytest.raises(CommandError, match="--force"):
        seed()
    assert Customer.objects.filter(is_demo=True).count() == SIZE

    seed("--force")
    assert Customer.objects.filter(is_demo=True).count() == SIZE
    assert Transaction.objects.filter(pk=real.pk).exists()
    assert Customer.objects.filter(is_demo=False).count() == 1
    # Demo numbers continue after the real customer's number instead of colliding with it.
    demo_numbers = Customer.objects.filter(is_demo=True).values_list("number", flat=True)
    assert min(demo_numbers) == f"C{SIZE + 2:06d}"


def test_if_empty_leaves_existing_data_alone():
    before = Transaction.objects.count()
    out = StringIO()
    seed("--if-empty", stdout=out)
    assert "nothing seeded" in out.getvalue()
    assert Transaction.objects.count() == before


def test_volume_options_scale_transactions_and_services():
    seed("--transactions-per-customer", "20", "--service-events-per-customer", "2")
    customers = Customer.objects.filter(is_demo=True)
    assert customers.count() == SIZE
    assert 14 <= Transaction.objects.filter(customer__is_demo=True).count() / SIZE <= 28
    assert 1 <= ServiceEvent.objects.filter(customer__is_demo=True).count() / SIZE <= 3.5
    # Buying less often, not dying sooner: silent churners and lost customers still occur.
    assert customers.filter(status=Customer.Status.LOST).exists()
    assert customers.filter(status=Customer.Status.ACTIVE).exists()


@pytest.mark.services
def test_bulk_load_restores_every_index_and_constraint():
    from tests.conftest import require_service

    require_service(connection.vendor == "postgresql", "PostgreSQL (the bulk load path is PostgreSQL only)")

    def schema():
        with connection.cursor() as cursor:
            return {table: sorted(connection.introspection.get_constraints(cursor, table))
                    for table in (Customer._meta.db_table, Transaction._meta.db_table, ServiceEvent._meta.db_table)}

    before = schema()
    seed()
    assert schema() == before


@pytest.mark.services
def test_bulk_load_keeps_the_search_indexes_fine_statistics():
    """The seed rebuilds the customers' indexes from their definitions, which do not carry a
    column's statistics target: the customer search's two expression indexes must come back
    with the finer statistics of customers migration 0007, or a number prefix is read down the
    name index again (seconds at a million customers)."""
    from tests.conftest import require_service

    require_service(connection.vendor == "postgresql", "PostgreSQL (the bulk load path is PostgreSQL only)")

    def targets():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname, a.attstattarget FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "WHERE c.relname IN ('customer_number_upper_idx', 'customer_name_upper_trgm_idx') AND a.attnum = 1"
            )
            return dict(cursor.fetchall())

    seed()  # the module's seed was one already
    assert targets() == {"customer_number_upper_idx": 1000, "customer_name_upper_trgm_idx": 1000}
