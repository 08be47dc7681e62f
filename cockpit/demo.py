"""Demo data: a reproducible industrial supplier with customers, purchases and free services.

The supplier sells machines, spare parts, consumables and service contracts to German
industry. Purchases follow the BG/NBD story (Fader, Hardie & Lee 2005: while alive, a
customer buys at a Poisson rate lambda ~ Gamma(r, alpha); after each purchase it drops out
with probability p ~ Beta(a, b)) and spend per line follows Gamma-Gamma (Fader, Hardie &
Lee 2005 "RFM and CLV": value ~ Gamma(p, nu), nu ~ Gamma(q, gamma)), shaped by a monthly
season, a growth trend for young accounts and a margin rate per customer. Free services
are drawn per persona so all four segments of DOMAIN.md occur: uncritical, problem group
(spoiled with services, little margin), check potential and investment customers.

Everything is generated with numpy in chunks of customers (one generator per chunk, seeded
from ``seed`` and the chunk number: same seed and as-of give the same data) and written in
bulk: COPY of preformatted text blocks on PostgreSQL, executemany in one transaction per
chunk on SQLite. When a PostgreSQL database holds nothing but demo data, the whole seed is
one transaction that loads the tables without their secondary indexes and foreign keys and
builds those once at the end. Every customer row is marked ``is_demo``; the data is only
ever replaced when the database holds nothing else.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.db.models import Max
from django.utils import timezone

from core.copy_text import block as copy_block
from core.copy_text import copy_into
from customers.models import Customer, SurveyAnswer, Transaction
from customers.roles import Role
from services.models import ServiceEvent, ServiceType, StandardCost
from services.selectors import standard_cost_on

DEMO_PASSWORD = "cvm-demo"
DEFAULT_CHUNK_SIZE = 50_000
# Rows per COPY statement / executemany call: bounds the text block (~110 bytes a row).
WRITE_BATCH = 400_000
# Means per customer over three years of history with the default parameters (measured on
# 100k customers: 48.4 transaction lines and 9.9 service events). The volume options scale
# the purchase rate and the service rate by target / default, so the means are approximate
# (one-off buyers and the first purchase of each customer do not scale).
DEFAULT_TRANSACTIONS_PER_CUSTOMER = 48.0
DEFAULT_SERVICE_EVENTS_PER_CUSTOMER = 10.0


# --- the company ---------------------------------------------------------------------------

@dataclass(frozen=True)
class DemoLogin:
    username: str
    first_name: str
    last_name: str
    role: Role

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


REPS = [
    DemoLogin("rep1", "Anna", "Becker", Role.SALES_REP),
    DemoLogin("rep2", "Jonas", "Weber", Role.SALES_REP),
    DemoLogin("rep3", "Lena", "Hoffmann", Role.SALES_REP),
    DemoLogin("rep4", "Tobias", "Schulz", Role.SALES_REP),
    DemoLogin("rep5", "Miriam", "Krüger", Role.SALES_REP),
]
INSIDE = DemoLogin("inside", "Sabine", "Vogel", Role.INSIDE_SALES)
MANAGER = DemoLogin("manager", "Martin", "Brandt", Role.MANAGER)
DEMO_LOGINS = [*REPS, INSIDE, MANAGER]

# Nielsen areas with their share of customers and the rep (index into REPS) covering them.
REGIONS = [
    ("North (Nielsen I)", 0.15, 0),
    ("North Rhine-Westphalia (Nielsen II)", 0.23, 1),
    ("Hesse, Rhineland-Palatinate, Saarland (Nielsen IIIa)", 0.14, 2),
    ("Baden-Württemberg (Nielsen IIIb)", 0.19, 3),
    ("Bavaria (Nielsen IV)", 0.18, 4),
    ("East (Nielsen V-VII)", 0.11, 0),
]
INDUSTRIES = [
    ("Mechanical engineering", 0.22),
    ("Automotive supplier", 0.18),
    ("Metalworking", 0.16),
    ("Chemicals and plastics", 0.10),
    ("Food and beverage", 0.09),
    ("Packaging", 0.09),
    ("Medical technology", 0.08),
    ("Energy and utilities", 0.08),
]
CHANNELS = [  # acquisition channels other than referral, with their shares
    (Customer.Channel.DIRECT_SALES, 0.45),
    (Customer.Channel.TRADE_FAIR, 0.18),
    (Customer.Channel.ONLINE, 0.14),
    (Customer.Channel.PARTNER, 0.13),
    (Customer.Channel.OTHER, 0.10),
]
REFERRAL_SHARE = 0.16

FAMILY_NAMES = [
    "Müller", "Schmidt", "Schneider", "Fischer", "Meyer", "Wagner", "Becker", "Hoffmann", "Schäfer",
    "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann",
    "Braun", "Hofmann", "Hartmann", "Lange", "Krause", "Lehmann", "Köhler", "Herrmann", "König",
    "Walter", "Kaiser", "Fuchs", "Peters", "Lang", "Scholz", "Möller", "Weiß", "Jung", "Hahn",
    "Vogt", "Friedrich", "Keller", "Günther", "Frank", "Berger", "Roth", "Beck", "Lorenz",
    "Baumann", "Kraus", "Böhm", "Simon", "Franke", "Albrecht", "Winter", "Ludwig", "Kessler",
    "Haas", "Sommer", "Brandt", "Seidel", "Heinrich", "Dietrich", "Engel", "Horn", "Busch",
]
NAME_HEADS = [
    "Nord", "Süd", "West", "Ost", "Rhein", "Main", "Elb", "Isar", "Alp", "Harz", "Ruhr", "Donau",
    "Tech", "Metall", "Stahl", "Form", "Präzi", "Pro", "Inno", "Hydro", "Therm", "Flex", "Poly",
    "Mega", "Uni", "Delta", "Omni", "Terra", "Saxo", "Weser",
]
NAME_TAILS = [
    "werk", "tec", "tronic", "form", "plast", "mat", "tech", "guss", "bau", "con", "dyn", "fix",
    "line", "pack", "med", "chem", "tool", "motion", "flow", "cut",
]
TRADES = [
    "Maschinenbau", "Antriebstechnik", "Kunststofftechnik", "Präzisionsteile", "Anlagenbau",
    "Fördertechnik", "Automation", "Oberflächentechnik", "Metallverarbeitung", "Verpackungstechnik",
    "Lebensmitteltechnik", "Medizintechnik", "Stanztechnik", "Gießerei", "Werkzeugbau", "Energietechnik",
]
LEGAL_FORMS = [
    ("GmbH", 0.50), ("GmbH & Co. KG", 0.16), ("AG", 0.08), ("KG", 0.07), ("e.K.", 0.05),
    ("OHG", 0.03), ("SE", 0.02), ("UG (haftungsbeschränkt)", 0.03), ("Ltd", 0.04), ("S.à r.l.", 0.02),
]

# Product lines: category share of lines, value multiplier, margin offset, products, channels.
CATEGORIES = [
    ("machine", 0.015, 16.0, -0.10, [
        "CNC machining centre", "Hydraulic press", "Compressor unit", "Conveyor system",
        "Laser cutting system", "Industrial robot cell",
    ]),
    ("spare_part", 0.35, 1.2, 0.08, [
        "Spindle bearing set", "Hydraulic pump", "Servo motor", "Control board", "Seal kit",
        "Linear guide", "Ball screw", "Frequency inverter", "Proximity sensor", "Gearbox",
    ]),
    ("consumable", 0.555, 0.45, 0.02, [
        "Cutting inserts", "Cooling lubricant 200 l", "Filter cartridges", "Grinding wheels",
        "Hydraulic oil 20 l", "Welding wire", "Drill set", "Protective gloves", "Cleaning agent",
    ]),
    ("service_contract", 0.08, 2.5, 0.10, [
        "Maintenance contract", "Full-service contract", "Calibration contract",
    ]),
]
SALES_CHANNELS = ["field sales", "inside sales", "webshop", "EDI", "phone/fax"]
# Per category: probability of each sales channel (consumables come by webshop and EDI).
SALES_CHANNEL_SHARES = np.array([
    [0.80, 0.15, 0.00, 0.00, 0.05],
    [0.15, 0.40, 0.20, 0.10, 0.15],
    [0.05, 0.20, 0.40, 0.25, 0.10],
    [0.70, 0.25, 0.00, 0.00, 0.05],
])

# Monthly season of spend (Jan..Dec): summer shutdown in August, holidays in December.
SEASON = np.array([0.95, 1.05, 1.18, 1.15, 1.10, 1.00, 0.90, 0.62, 1.05, 1.16, 1.10, 0.72])

# --- personas: the four segments -----------------------------------------------------------
UNCRITICAL, SPOILED, POTENTIAL, INVESTMENT = range(4)
PERSONA_SHARES = np.array([0.40, 0.22, 0.20, 0.18])
PURCHASE_RATE_FACTOR = np.array([0.65, 1.0, 1.35, 1.35])
SPEND_FACTOR = np.array([0.6, 0.3, 1.9, 1.7])
MARGIN_RATE_MEAN = np.array([0.29, 0.12, 0.33, 0.30])
# Free services per active year, and how much longer each one takes.
SERVICE_RATE = np.array([3.3, 17.5, 1.3, 10.0])
SERVICE_QUANTITY_FACTOR = np.array([1.0, 1.3, 0.9, 1.2])
# Share of each service type per persona, in catalogue order.
SERVICE_CODES = [
    "inside_sales_help", "technical_tip", "training", "market_information", "order_change",
    "commissioning", "hotline", "remote_optimisation", "joint_market_research", "joint_development",
]
SERVICE_MIX = np.array([
    [0.20, 0.25, 0.01, 0.10, 0.25, 0.01, 0.17, 0.01, 0.00, 0.00],  # uncritical
    [0.17, 0.20, 0.06, 0.06, 0.19, 0.02, 0.26, 0.04, 0.00, 0.00],  # spoiled
    [0.20, 0.26, 0.02, 0.15, 0.20, 0.02, 0.13, 0.02, 0.00, 0.00],  # check potential
    [0.07, 0.12, 0.16, 0.08, 0.06, 0.12, 0.10, 0.16, 0.05, 0.08],  # investment
])
# Services inside sales logs itself; the rest the customer's rep logs after a visit.
INSIDE_LOGGED = {"inside_sales_help", "technical_tip", "market_information", "order_change", "hotline"}
# (prefix, suffix, lowest number, highest number): one number makes each note specific.
NOTE_TEMPLATES = {
    "inside_sales_help": [
        ("Researched replacement for discontinued part no. ", " and sent quote", 10000, 99999),
        ("Compared ", " supplier offers for the customer's purchasing", 2, 6),
        ("Prepared customs papers for export order ", "", 40000, 49999),
        ("Checked stock at ", " warehouses for an urgent delivery", 2, 5),
    ],
    "technical_tip": [
        ("Advised on cutting speed for stainless steel, insert grade P", "", 10, 40),
        ("Explained lubrication interval for spindle, model S-", "", 100, 999),
        ("Tip: lower hydraulic pressure to ", " bar to stop valve chatter", 80, 180),
        ("Sent setup sheet for tool holder HSK-", "", 32, 100),
    ],
    "training": [
        ("Operator training on machining centre, ", " participants", 3, 12),
        ("Maintenance seminar for ", " shift leaders", 2, 8),
        ("Safety training for new press line, ", " staff", 4, 15),
    ],
    "market_information": [
        ("Passed on steel price outlook for Q", "", 1, 4),
        ("Informed about new machinery directive, annex ", "", 1, 12),
        ("Shared energy price study for ", " plants in the region", 3, 20),
    ],
    "order_change": [
        ("Changed delivery date of order ", " at short notice", 200000, 299999),
        ("Split order ", " into two deliveries", 200000, 299999),
        ("Changed quantity on order line ", " after release", 1, 40),
        ("New delivery address for order ", "", 200000, 299999),
    ],
    "commissioning": [
        ("Commissioned conveyor system, line ", "", 1, 9),
        ("Commissioning of compressor unit, serial ", "", 10000, 99999),
        ("Started up hydraulic press at plant ", "", 1, 6),
    ],
    "hotline": [
        ("Hotline: spindle alarm E-", " after maintenance", 100, 999),
        ("Hotline: hydraulic pressure drop on line ", "", 1, 9),
        ("Hotline: controller lost parameters after power cut, machine M-", "", 100, 999),
        ("Hotline: conveyor stops at station ", ", sensor adjusted", 1, 30),
        ("Hotline: coolant pump error code ", "", 10, 99),
    ],
    "remote_optimisation": [
        ("Remote optimisation of cycle time on machine M-", "", 100, 999),
        ("Remote check of compressor energy use, ", " % saving found", 3, 18),
        ("Remote update of robot programme, cell ", "", 1, 12),
    ],
    "joint_market_research": [
        ("Joint survey of ", " end customers on tooling needs", 20, 200),
        ("Workshop on market entry, country ", " of the shortlist", 1, 5),
    ],
    "joint_development": [
        ("Joint development: prototype gripper, iteration ", "", 1, 9),
        ("Lead-user test of new filter system, batch ", "", 1, 20),
        ("Co-design of fixture for part family ", "", 100, 999),
    ],
}
# Unit of measure -> quantity steps (hours in quarters, days in halves, occurrences whole).
UNIT_STEP = {ServiceType.Unit.HOUR: (0.25, 4.0), ServiceType.Unit.DAY: (0.5, 3.0), ServiceType.Unit.OCCURRENCE: (1, 3)}

# A mid-history price change of the services that got dearer, in percent.
COST_CHANGE_MONTHS_BEFORE = 18
COST_CHANGE_PERCENT = {
    "hotline": 12, "technical_tip": 10, "training": 8, "commissioning": 15,
    "remote_optimisation": 9, "inside_sales_help": 11,
}


# --- public interface ----------------------------------------------------------------------

class DemoDataConflict(Exception):
    """The database holds real data and the caller did not ask to add demo data next to it."""


@dataclass
class SeedReport:
    customers: int = 0
    transactions: int = 0
    service_events: int = 0
    survey_answers: int = 0
    replaced_customers: int = 0
    skipped: bool = False
    as_of: date | None = None
    first_day: date | None = None
    seconds: dict[str, float] = field(default_factory=lambda: {"customers": 0.0, "transactions": 0.0,
                                                               "service_events": 0.0, "total": 0.0})
    logins: list[DemoLogin] = field(default_factory=list)

    def rate(self, table: str) -> float:
        """Rows per second spent on ``table`` (generation and writing)."""
        seconds = self.seconds[table]
        return getattr(self, table) / seconds if seconds else 0.0


def seed_demo(
    *,
    customers: int = 2000,
    seed: int = 42,
    as_of: date | None = None,
    years: int = 3,
    force: bool = False,
    if_empty: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    transactions_per_customer: float = DEFAULT_TRANSACTIONS_PER_CUSTOMER,
    service_events_per_customer: float = DEFAULT_SERVICE_EVENTS_PER_CUSTOMER,
    progress: Callable[[str], None] | None = None,
) -> SeedReport:
    """Replace the demo data by ``customers`` fresh demo customers with ``years`` of history.

    Refuses (``DemoDataConflict``) when the database holds non-demo customers, transactions
    or service events, unless ``force``: then the demo data is added next to them and only
    demo rows are ever deleted. With ``if_empty`` nothing happens when any customer exists.
    ``transactions_per_customer`` and ``service_events_per_customer`` set the approximate
    mean volume per customer (over three years); the personas and their mix stay the same.
    """
    if customers < 1:
        raise ValueError("customers must be at least 1")
    if years < 1:
        raise ValueError("years must be at least 1")
    if transactions_per_customer <= 0 or service_events_per_customer < 0:
        raise ValueError("transactions per customer must be positive, service events not negative")
    volume = _Volume(purchase_rate=transactions_per_customer / DEFAULT_TRANSACTIONS_PER_CUSTOMER,
                     service_rate=service_events_per_customer / DEFAULT_SERVICE_EVENTS_PER_CUSTOMER)
    as_of = as_of or timezone.localdate()
    first_day = _years_before(as_of, years)
    report = SeedReport(as_of=as_of, first_day=first_day, logins=list(DEMO_LOGINS))
    say = progress or (lambda message: None)

    if if_empty and Customer.objects.exists():
        report.skipped = True
        return report
    real = _real_data_counts()
    if any(real.values()) and not force:
        raise DemoDataConflict(
            "The database holds data that is not demo data ({}). seed_demo only replaces demo "
            "data; use --force to add demo data next to it (nothing real is deleted).".format(
                ", ".join(f"{count} {name}" for name, count in real.items() if count)
            )
        )

    started = time.perf_counter()
    only_demo = not any(real.values())
    # Nothing but demo data on PostgreSQL: one transaction that reloads the tables without
    # their secondary indexes and foreign keys and rebuilds them once at the end (see
    # _bulk_load). A failure rolls everything back, old demo data and indexes included.
    bulk_load = only_demo and connection.vendor == "postgresql"
    with transaction.atomic() if bulk_load else nullcontext():
        _seed(report, customers=customers, seed=seed, first_day=first_day, as_of=as_of, chunk_size=chunk_size,
              only_demo=only_demo, bulk_load=bulk_load, volume=volume, say=say)
    report.survey_answers = _seed_survey_answers(seed=seed, as_of=as_of)
    report.seconds["total"] = time.perf_counter() - started
    return report


@dataclass(frozen=True)
class _Volume:
    purchase_rate: float = 1.0   # factor on every customer's purchase rate
    service_rate: float = 1.0    # factor on every customer's rate of free services


def _seed(report, *, customers, seed, first_day, as_of, chunk_size, only_demo, bulk_load, volume, say) -> None:
    with transaction.atomic():
        report.replaced_customers = _delete_demo_data(only_demo=only_demo)
        users = _ensure_users()
        _ensure_cost_change(as_of=as_of)
    types = _service_types()
    first_id = (Customer.objects.aggregate(m=Max("id"))["m"] or 0) + 1
    first_number = _first_free_number(customers)
    calendar = _Calendar(first_day=first_day, as_of=as_of)
    writer = _Writer(created_at=timezone.now())
    rep_ids = np.array([users[rep.username] for rep in REPS], dtype=np.int64)
    inside_id = users[INSIDE.username]
    owner_of_region = rep_ids[[rep for _, _, rep in REGIONS]]

    chunks = math.ceil(customers / chunk_size)
    tables = [Customer, Transaction, ServiceEvent]
    with _fast_sqlite_writes(), _bulk_load(tables, say=say) if bulk_load else nullcontext():
        for number in range(chunks):
            offset = number * chunk_size
            size = min(chunk_size, customers - offset)
            rng = np.random.default_rng([seed, number])
            chunk_started = time.perf_counter()
            with transaction.atomic():
                if connection.vendor == "postgresql":
                    # Check foreign keys per statement: no growing queue of deferred checks.
                    with connection.cursor() as cursor:
                        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                counts = _seed_chunk(
                    rng, size=size, first_id=first_id + offset, first_number=first_number + offset,
                    calendar=calendar, types=types, owner_of_region=owner_of_region,
                    inside_id=inside_id, writer=writer, seconds=report.seconds, volume=volume,
                )
            report.customers += counts[0]
            report.transactions += counts[1]
            report.service_events += counts[2]
            say(
                f"chunk {number + 1}/{chunks}: {counts[0]:,} customers, {counts[1]:,} transactions, "
                f"{counts[2]:,} service events in {time.perf_counter() - chunk_started:.1f} s"
            )
    _reset_sequences()


# --- guards, deletion, users, costs --------------------------------------------------------

def _real_data_counts() -> dict[str, int]:
    """Non-demo rows; transactions and events of real customers count separately."""
    return {
        "customers": Customer.objects.filter(is_demo=False).count(),
        "transactions": Transaction.objects.filter(customer__is_demo=False).count(),
        "service events": ServiceEvent.objects.filter(customer__is_demo=False).count(),
    }


def _delete_demo_data(*, only_demo: bool) -> int:
    """Delete every demo customer with what hangs off it; returns how many customers went.

    The ORM's collector would load every demo customer into memory and write an audit row
    per deleted service event (a million customers, tens of millions of rows at full size),
    so rows hanging off demo customers go with one statement per relation and the customers
    with one more. Demo data is not audited: it is made and replaced by this module only.
    When the database holds nothing but demo data, PostgreSQL truncates instead.
    """
    demo = Customer.objects.filter(is_demo=True)
    count = demo.count()
    if not count:
        return 0
    quote = connection.ops.quote_name
    if only_demo and connection.vendor == "postgresql":
        tables = _cascade_tables(Customer)
        if tables is not None:
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute("TRUNCATE " + ", ".join(quote(t) for t in sorted(tables)))
            return count
    demo_ids = f"SELECT id FROM {quote(Customer._meta.db_table)} WHERE is_demo = %s"
    for relation in _reverse_relations(Customer):
        model, field_name = relation.related_model, relation.field.name
        rows = model._base_manager.filter(**{f"{field_name}__in": demo.values("pk")})
        if relation.on_delete is models.DO_NOTHING:
            continue
        if relation.on_delete is models.CASCADE and _cascade_tables(model) == {model._meta.db_table}:
            with connection.cursor() as cursor:
                if only_demo and not relation.field.null:
                    # Every row belongs to a demo customer; SQLite empties a table fastest
                    # without a WHERE clause.
                    cursor.execute(f"DELETE FROM {quote(model._meta.db_table)}")
                else:
                    cursor.execute(
                        f"DELETE FROM {quote(model._meta.db_table)} WHERE {quote(relation.field.column)} "
                        f"IN ({demo_ids})", [True],
                    )
        elif relation.on_delete is models.CASCADE:
            rows.delete()
        elif relation.on_delete is models.SET_NULL:
            if model is Customer:
                rows = rows.filter(is_demo=False)  # demo referrals go with their customers
            rows.update(**{field_name: None})
        else:
            # PROTECT, RESTRICT, SET(...): let the ORM apply (or refuse) the rule.
            demo.delete()
            return count
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {quote(Customer._meta.db_table)} WHERE is_demo = %s", [True])
    return count


def _reverse_relations(model) -> list:
    """Foreign keys pointing at ``model`` (including many-to-many link tables)."""
    return [
        f for f in model._meta.get_fields(include_hidden=True)
        if f.auto_created and not f.concrete and (f.one_to_many or f.one_to_one)
    ]


def _cascade_tables(model, seen: set | None = None) -> set[str] | None:
    """Tables emptied with ``model``'s when every relation below it cascades, else None.

    Keys without a database constraint that do nothing on delete (audit history) neither
    block nor join the truncation.
    """
    seen = set() if seen is None else seen
    if model in seen:
        return set()
    seen.add(model)
    tables = {model._meta.db_table}
    for relation in _reverse_relations(model):
        if relation.related_model is model:
            continue  # referrals point inside the same table, emptied anyway
        if relation.on_delete is models.DO_NOTHING and not relation.field.db_constraint:
            continue
        if relation.on_delete is not models.CASCADE:
            return None
        below = _cascade_tables(relation.related_model, seen)
        if below is None:
            return None
        tables |= below
    return tables


def _ensure_users() -> dict[str, int]:
    """The demo logins, created once with the demo password and kept on later runs."""
    User = get_user_model()
    groups = {role: Group.objects.get_or_create(name=role.value)[0] for role in Role}
    ids = {}
    for login in DEMO_LOGINS:
        user = User.objects.filter(username=login.username).first()
        if user is None:
            user = User.objects.create_user(
                login.username, email=f"{login.username}@demo.invalid", password=DEMO_PASSWORD,
                first_name=login.first_name, last_name=login.last_name,
                is_staff=login.role is Role.MANAGER,
            )
        elif login.role is Role.MANAGER and not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        user.groups.add(groups[login.role])
        ids[login.username] = user.pk
    return ids


def cost_change_day(as_of: date) -> date:
    """The first of the month nearest to ``COST_CHANGE_MONTHS_BEFORE`` months before ``as_of``."""
    months = as_of.year * 12 + as_of.month - 1 - COST_CHANGE_MONTHS_BEFORE + (as_of.day > 15)
    return date(months // 12, months % 12 + 1, 1)


def _ensure_cost_change(*, as_of: date) -> None:
    valid_from = cost_change_day(as_of)
    for service_type in ServiceType.objects.filter(code__in=COST_CHANGE_PERCENT):
        if StandardCost.objects.filter(service_type=service_type, valid_from=valid_from).exists():
            continue
        before = standard_cost_on(service_type_id=service_type.pk, day=valid_from - timedelta(days=1))
        percent = COST_CHANGE_PERCENT[service_type.code]
        StandardCost.objects.create(
            service_type=service_type, valid_from=valid_from,
            cost_per_unit=(before * (100 + percent) / 100).quantize(Decimal("0.01")),
        )


@dataclass(frozen=True)
class _ServiceTypes:
    ids: np.ndarray       # per catalogue code present in the database
    codes: list[str]
    mix: np.ndarray       # persona x type, cumulative
    step: np.ndarray      # quantity step per type
    top: np.ndarray       # largest quantity per type
    inside: np.ndarray    # bool: logged by inside sales


def _service_types() -> _ServiceTypes:
    present = {code: (pk, unit) for code, pk, unit in
               ServiceType.objects.filter(code__in=SERVICE_CODES).values_list("code", "pk", "unit")}
    columns = [i for i, code in enumerate(SERVICE_CODES) if code in present]
    codes = [SERVICE_CODES[i] for i in columns]
    mix = SERVICE_MIX[:, columns]
    with np.errstate(invalid="ignore", divide="ignore"):
        mix = np.nan_to_num(mix / mix.sum(axis=1, keepdims=True))
    return _ServiceTypes(
        ids=np.array([present[c][0] for c in codes], dtype=np.int64),
        codes=codes,
        mix=np.cumsum(mix, axis=1),
        step=np.array([UNIT_STEP.get(present[c][1], (1, 3))[0] for c in codes], dtype=float),
        top=np.array([UNIT_STEP.get(present[c][1], (1, 3))[1] for c in codes], dtype=float),
        inside=np.array([c in INSIDE_LOGGED for c in codes], dtype=bool),
    )


def _first_free_number(count: int) -> int:
    """Demo numbers start at C000001 unless real customers already use that range."""
    taken = [
        int(number[1:]) for number in
        Customer.objects.filter(number__startswith="C").values_list("number", flat=True)
        if number[1:].isdigit()
    ]
    highest = max(taken, default=0)
    return 1 if highest == 0 else highest + 1


def _reset_sequences() -> None:
    statements = connection.ops.sequence_reset_sql(no_style(), [Customer])
    if statements:
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


# --- generation ----------------------------------------------------------------------------

class _Calendar:
    """Days as integers: 0 is the first day of the history, ``last`` is as-of."""

    # Customers may have been won up to five years before the history starts.
    LEAD_DAYS = 5 * 366 + 400

    def __init__(self, *, first_day: date, as_of: date):
        self.first_day = first_day
        self.last = (as_of - first_day).days
        self.low = -self.LEAD_DAYS
        days = [first_day + timedelta(days=int(d)) for d in range(self.low, self.last + 1)]
        self.text = np.array([d.isoformat() for d in days], dtype=object)
        self.bytes = _byte_table([d.isoformat() for d in days])
        self.month = np.array([d.month - 1 for d in days], dtype=np.int64)

    def index(self, day: np.ndarray) -> np.ndarray:
        return day - self.low


def _choice(rng, shares, size) -> np.ndarray:
    cumulative = np.cumsum(np.asarray(shares, dtype=float))
    return np.searchsorted(cumulative / cumulative[-1], rng.random(size), side="right")


def _segment_start(counts: np.ndarray) -> np.ndarray:
    return np.cumsum(counts) - counts


def _seed_chunk(rng, *, size, first_id, first_number, calendar, types, owner_of_region,
                inside_id, writer, seconds, volume) -> tuple[int, int, int]:
    clock = time.perf_counter()
    people = _draw_customers(rng, size=size, calendar=calendar, volume=volume)
    seconds["customers"] += time.perf_counter() - clock

    clock = time.perf_counter()
    purchases = _draw_purchases(rng, people, calendar=calendar)
    lines = _draw_lines(rng, people, purchases, calendar=calendar)
    seconds["transactions"] += time.perf_counter() - clock

    clock = time.perf_counter()
    _settle_customers(rng, people, purchases, lines, calendar=calendar)
    ids = first_id + np.arange(size, dtype=np.int64)
    writer.customers(people, ids=ids, first_number=first_number, calendar=calendar,
                     owners=owner_of_region[people["region"]])
    seconds["customers"] += time.perf_counter() - clock

    clock = time.perf_counter()
    writer.transactions(lines, customer_ids=ids[lines["customer"]], first_number=first_number, calendar=calendar)
    seconds["transactions"] += time.perf_counter() - clock

    clock = time.perf_counter()
    events = _draw_service_events(rng, people, purchases, calendar=calendar, types=types, volume=volume)
    logged_by = np.where(types.inside[events["type"]] & (rng.random(len(events["type"])) < 0.85)
                         | (rng.random(len(events["type"])) < 0.15),
                         inside_id, owner_of_region[people["region"]][events["customer"]])
    writer.events(events, customer_ids=ids[events["customer"]], type_ids=types.ids[events["type"]],
                  logged_by=logged_by, calendar=calendar)
    seconds["service_events"] += time.perf_counter() - clock
    return size, len(lines["customer"]), len(events["customer"])


def _draw_customers(rng, *, size, calendar, volume=_Volume()) -> dict:
    """Who the customers are: persona, acquisition, referral, purchase and spend parameters."""
    last = calendar.last
    persona = _choice(rng, PERSONA_SHARES, size)
    kind = rng.random(size)
    growing = kind < 0.04       # won in the last months, growing fast
    one_off = (kind >= 0.04) & (kind < 0.07)  # bought once and never again
    # A third were won before the history starts (their early purchases are cut off).
    acquired = np.where(rng.random(size) < 0.35,
                        rng.uniform(-3 * 365, 0, size), rng.uniform(0, max(last - 20, 1), size))
    acquired[growing] = rng.uniform(last - 330, last - 150, int(growing.sum()))
    acquired = np.floor(acquired).astype(np.int64)

    # Number customers in order of acquisition, so older customers have lower numbers
    # and a referrer is always written before the customers it referred.
    order = np.argsort(acquired, kind="stable")
    persona, growing, one_off, acquired = persona[order], growing[order], one_off[order], acquired[order]

    # BG/NBD: purchase rate per week and drop-out probability after each purchase.
    rate = rng.gamma(1.6, 0.32, size) * PURCHASE_RATE_FACTOR[persona]
    rate[growing] = np.maximum(rate[growing], rng.uniform(0.6, 1.0, int(growing.sum())))
    dropout = rng.beta(1.3, 100.0, size)
    # Buying less (or more) often with the same drop-out risk per week: the customers' lifetimes
    # and the share of churners stay as they are, and the volume scales in proportion.
    rate *= volume.purchase_rate
    dropout = np.minimum(dropout / volume.purchase_rate, 0.999)
    # Gamma-Gamma: nu ~ Gamma(q, gamma) per customer; line value ~ Gamma(p, nu).
    nu = rng.gamma(4.0, 1 / 560.0, size)
    margin = np.clip(rng.normal(MARGIN_RATE_MEAN[persona], 0.06), 0.15, 0.45)
    spoiled = persona == SPOILED
    margin[spoiled] = np.clip(rng.normal(0.08, 0.06, int(spoiled.sum())), -0.08, 0.22)
    thin = rng.random(size) < 0.02   # a few customers bring (almost) nothing: price was too sharp
    margin[thin] = rng.uniform(-0.08, 0.03, int(thin.sum()))
    growth = np.where(growing, rng.uniform(1.3, 2.2, size), 0.0)  # log growth of spend per year

    channel_index = _choice(rng, [share for _, share in CHANNELS], size)
    referred = rng.random(size) < REFERRAL_SHARE
    referred[0] = False
    referrer = _draw_referrers(rng, referred, persona)
    referred &= referrer >= 0

    return {
        "size": size, "persona": persona, "growing": growing, "one_off": one_off,
        "acquired": acquired, "rate": rate, "dropout": dropout, "nu": nu, "margin": margin,
        "growth": growth, "channel": channel_index, "referred": referred, "referrer": referrer,
        "region": _choice(rng, [share for _, share, _ in REGIONS], size),
        "industry": _choice(rng, [share for _, share in INDUSTRIES], size),
        "name": _draw_names(rng, size),
    }


def _draw_referrers(rng, referred, persona) -> np.ndarray:
    """Index of an earlier customer for each referred one (-1 if none), chains welcome.

    Referred customers refer again three times as often, investment customers twice:
    enthusiasts recommend, which gives referral chains A -> B -> C.
    """
    weight = np.where(referred, 3.0, np.where(persona == INVESTMENT, 2.0, 1.0))
    cumulative = np.cumsum(weight)
    referrer = np.full(len(referred), -1, dtype=np.int64)
    positions = np.flatnonzero(referred)
    positions = positions[positions > 0]
    # Weighted pick among the customers before: inverse of the cumulative weight.
    target = rng.random(len(positions)) * cumulative[positions - 1]
    referrer[positions] = np.searchsorted(cumulative, target, side="right")
    return referrer


def _draw_names(rng, size) -> list[str]:
    family = rng.integers(0, len(FAMILY_NAMES), (size, 2))
    head = rng.integers(0, len(NAME_HEADS), size)
    tail = rng.integers(0, len(NAME_TAILS), size)
    trade = rng.integers(0, len(TRADES), size)
    legal = _choice(rng, [share for _, share in LEGAL_FORMS], size)
    pattern = rng.integers(0, 4, size)
    forms = [form for form, _ in LEGAL_FORMS]
    names = []
    for p, (f1, f2), h, t, tr, lg in zip(pattern.tolist(), family.tolist(), head.tolist(), tail.tolist(),
                                        trade.tolist(), legal.tolist(), strict=False):
        if p == 0:
            name = f"{FAMILY_NAMES[f1]} {TRADES[tr]}"
        elif p == 1:
            name = f"{NAME_HEADS[h]}{NAME_TAILS[t]}"
        elif p == 2:
            name = f"{FAMILY_NAMES[f1]} & {FAMILY_NAMES[f2]}" if f1 != f2 else f"{FAMILY_NAMES[f1]} & Söhne"
        else:
            name = f"{NAME_HEADS[h]}{NAME_TAILS[t]} {TRADES[tr]}"
        names.append(f"{name} {forms[lg]}")
    return names


def _draw_purchases(rng, people, *, calendar) -> dict:
    """Purchase days per customer by the BG/NBD story, cut to the history window."""
    last = calendar.last
    rate_per_day = people["rate"] / 7.0
    span = np.maximum(last - people["acquired"], 0)
    expected = rate_per_day * span
    # Enough draws to pass as-of unless the customer drops out first.
    cap = np.ceil(expected + 5 * np.sqrt(expected) + 5).astype(np.int64)
    lifetime = rng.geometric(people["dropout"])          # purchases before dropping out
    lifetime[people["one_off"]] = 1
    lifetime[people["growing"]] = cap[people["growing"]] + 1
    count = np.minimum(lifetime, cap)

    owner = np.repeat(np.arange(people["size"]), count)
    start = _segment_start(count)
    gap = rng.exponential(1.0, len(owner)) / rate_per_day[owner]
    gap[start] = 0.0  # the first purchase is the acquisition
    elapsed = np.cumsum(gap)
    elapsed -= np.repeat(elapsed[start], count)
    day = people["acquired"][owner] + np.floor(elapsed).astype(np.int64)

    happened = day <= last
    last_purchase = np.full(people["size"], -10**6, dtype=np.int64)
    np.maximum.at(last_purchase, owner[happened], day[happened])
    made = np.bincount(owner[happened], minlength=people["size"])
    # Alive at as-of unless every purchase of its lifetime has already happened.
    people["alive"] = (lifetime > made)
    people["last_purchase"] = last_purchase
    people["purchases_ever"] = made

    seen = happened & (day >= 0)
    return {"customer": owner[seen], "day": day[seen]}


def _draw_lines(rng, people, purchases, *, calendar) -> dict:
    """Order lines of each purchase: product, revenue and cost of goods in cents."""
    lines_per_purchase = 1 + rng.poisson(0.65, len(purchases["day"]))
    customer = np.repeat(purchases["customer"], lines_per_purchase)
    day = np.repeat(purchases["day"], lines_per_purchase)
    n = len(customer)

    category = _choice(rng, [c[1] for c in CATEGORIES], n)
    value_factor = np.array([c[2] for c in CATEGORIES])
    value_factor /= (value_factor * np.array([c[1] for c in CATEGORIES])).sum()
    product_counts = np.array([len(c[4]) for c in CATEGORIES])
    product = _segment_start(product_counts)[category] + np.floor(
        rng.random(n) * product_counts[category]).astype(np.int64)
    cumulative_channels = np.cumsum(SALES_CHANNEL_SHARES, axis=1)[category]
    channel = (rng.random(n)[:, None] > cumulative_channels).sum(axis=1)
    channel = np.minimum(channel, len(SALES_CHANNELS) - 1)

    years_in = np.maximum(day - people["acquired"][customer], 0) / 365.0
    value = (
        rng.gamma(3.0, 1.0, n) / people["nu"][customer]
        * SPEND_FACTOR[people["persona"][customer]]
        * value_factor[category]
        * SEASON[calendar.month[calendar.index(day)]]
        * np.exp(people["growth"][customer] * years_in)
    )
    revenue = np.maximum(np.round(value * 100), 100).astype(np.int64)
    margin = people["margin"][customer] + np.array([c[3] for c in CATEGORIES])[category] + rng.normal(0, 0.03, n)
    margin = np.clip(margin, -0.25, 0.7)
    cost = np.round(revenue * (1.0 - margin)).astype(np.int64)
    line_no = np.arange(n) - _segment_start(np.bincount(customer, minlength=people["size"]))[customer]
    return {"customer": customer, "day": day, "revenue": revenue, "cost": cost,
            "product": product, "channel": channel, "line_no": line_no}


def _settle_customers(rng, people, purchases, lines, *, calendar) -> None:
    """Status, lost date and wallet, which depend on what the customer bought."""
    size, last = people["size"], calendar.last
    dead = ~people["alive"]
    quiet_since = last - people["last_purchase"]
    # Some drop-outs were noticed and closed; most are silent churners, still "active".
    noticed = dead & (quiet_since > 180) & (rng.random(size) < np.where(people["last_purchase"] < 0, 0.5, 0.2))
    lost_on = people["last_purchase"] + rng.integers(90, 271, size)
    lost_on = np.minimum(lost_on, last)
    people["lost"] = noticed
    people["lost_on"] = np.where(noticed, lost_on, 0)

    revenue = np.bincount(lines["customer"], weights=lines["revenue"], minlength=size) / 100.0
    observed_from = np.maximum(people["acquired"], 0)
    observed_to = np.where(dead, np.minimum(people["last_purchase"] + 30, last), last)
    years = np.maximum(observed_to - observed_from, 91) / 365.0
    share_of_supply = rng.uniform(0.10, 1.0, size)
    wallet = np.round(revenue / years / share_of_supply / 100.0) * 100.0
    people["wallet"] = np.where((rng.random(size) < 0.66) & (revenue > 0), np.maximum(wallet, 500.0), np.nan)


def _draw_service_events(rng, people, purchases, *, calendar, types, volume=_Volume()) -> dict:
    """Free services in each customer's active life, clustered around its purchases."""
    size, last = people["size"], calendar.last
    begin = np.maximum(people["acquired"], 0)
    end = np.where(people["alive"], last, np.minimum(people["last_purchase"] + 90, last))
    end = np.where(people["lost"], np.minimum(end, people["lost_on"]), end)
    active_years = np.maximum(end - begin, 0) / 365.0
    intensity = SERVICE_RATE[people["persona"]] * rng.gamma(2.0, 0.5, size)
    intensity[people["growing"]] *= 1.6  # onboarding: commissioning, trainings, questions
    intensity *= volume.service_rate
    count = rng.poisson(intensity * active_years)
    count[end < begin] = 0
    if not len(types.codes):
        count[:] = 0

    customer = np.repeat(np.arange(size), count)
    m = len(customer)
    # Near a purchase (the day before to two weeks after) or anywhere in the active life.
    bought = np.bincount(purchases["customer"], minlength=size)
    first_purchase = _segment_start(bought)
    near = (rng.random(m) < 0.6) & (bought[customer] > 0)
    pick = first_purchase[customer] + np.floor(rng.random(m) * bought[customer]).astype(np.int64)
    pick = np.minimum(pick, max(len(purchases["day"]) - 1, 0))
    anywhere = begin[customer] + np.floor(rng.random(m) * (end - begin + 1)[customer]).astype(np.int64)
    near_day = purchases["day"][pick] + rng.integers(-1, 15, m) if len(purchases["day"]) else anywhere
    day = np.clip(np.where(near, near_day, anywhere), begin[customer], end[customer])

    persona = people["persona"][customer]
    kind = (rng.random(m)[:, None] > types.mix[persona]).sum(axis=1)
    kind = np.minimum(kind, len(types.codes) - 1) if len(types.codes) else kind
    step, top = types.step[kind], types.top[kind]
    raw = rng.gamma(1.6, 0.55, m) * SERVICE_QUANTITY_FACTOR[persona] * np.where(step >= 1, 0.6, 1.0)
    steps = np.clip(np.ceil(raw * np.where(step >= 1, 1.0, 1.0 / np.maximum(step, 0.01))), 1, top / step)
    quantity = np.round(steps * step * 100).astype(np.int64)  # hundredths

    notes = _NOTES.for_types(types.codes)
    note = notes.first[kind] + np.floor(rng.random(m) * notes.count[kind]).astype(np.int64)
    number = notes.low[note] + np.floor(rng.random(m) * (notes.high[note] - notes.low[note] + 1)).astype(np.int64)
    return {"customer": customer, "day": day, "type": kind, "quantity": quantity,
            "note": note, "number": number, "notes": notes}


@dataclass(frozen=True)
class _NoteTable:
    prefix: list[str]
    suffix: list[str]
    low: np.ndarray
    high: np.ndarray
    first: np.ndarray   # per type: index of its first template
    count: np.ndarray   # per type: number of templates
    prefix_bytes: np.ndarray
    suffix_bytes: np.ndarray


class _NoteTables:
    def __init__(self):
        self._cache = {}

    def for_types(self, codes: list[str]) -> _NoteTable:
        key = tuple(codes)
        if key not in self._cache:
            templates = [NOTE_TEMPLATES.get(code) or [(code.replace("_", " ").capitalize() + " ", "", 1, 9)]
                         for code in codes]
            flat = [t for group in templates for t in group]
            counts = np.array([len(group) for group in templates], dtype=np.int64)
            self._cache[key] = _NoteTable(
                prefix=[t[0] for t in flat], suffix=[t[1] for t in flat],
                low=np.array([t[2] for t in flat], dtype=np.int64),
                high=np.array([t[3] for t in flat], dtype=np.int64),
                first=_segment_start(counts), count=counts,
                prefix_bytes=_byte_table([t[0] for t in flat]),
                suffix_bytes=_byte_table([t[1] for t in flat]),
            )
        return self._cache[key]


_NOTES = _NoteTables()


# --- writing -------------------------------------------------------------------------------
# PostgreSQL gets COPY text blocks built as byte matrices: each field is a fixed-width block of
# bytes, shorter values padded with NUL; dropping every NUL at once leaves the tab-separated
# rows. NUL cannot occur in text, so the padding never eats data.

_TAB = np.uint8(9)
_NEWLINE = np.uint8(10)
_DOT = np.uint8(46)


def _byte_table(strings: list[str]) -> np.ndarray:
    encoded = [s.encode() for s in strings]
    width = max((len(b) for b in encoded), default=1) or 1
    table = np.zeros((len(encoded), width), dtype=np.uint8)
    for row, raw in enumerate(encoded):
        table[row, : len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    return table


def _digits(values: np.ndarray, width: int, *, zero_pad: bool = False) -> np.ndarray:
    """Decimal digits of non-negative integers, right-aligned; unpadded unless ``zero_pad``."""
    values = np.asarray(values, dtype=np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    out = ((values[:, None] // powers) % 10 + 48).astype(np.uint8)
    if not zero_pad:
        leading = values[:, None] < powers
        leading[:, -1] = False
        out[leading] = 0
    return out


def _money(cents: np.ndarray, width: int = 12) -> np.ndarray:
    cents = np.asarray(cents, dtype=np.int64)
    if len(cents) and cents.min() < 0:
        raise ValueError("negative amounts are not generated")
    dot = np.full((len(cents), 1), _DOT, dtype=np.uint8)
    return np.hstack([_digits(cents // 100, width), dot, _digits(cents % 100, 2, zero_pad=True)])


def _ascii_strings(matrix: np.ndarray) -> list[str]:
    """Rows of a NUL-padded ASCII byte matrix as Python strings (for executemany)."""
    width = matrix.shape[1]
    return np.ascontiguousarray(matrix).view(f"S{width}").ravel().astype(f"U{width}").tolist()


def _batches(n: int):
    for start in range(0, n, WRITE_BATCH):
        yield slice(start, min(start + WRITE_BATCH, n))


class _Writer:
    def __init__(self, *, created_at):
        self.postgres = connection.vendor == "postgresql"
        self.created_at = created_at.isoformat(sep=" ") if self.postgres else \
            connection.ops.adapt_datetimefield_value(created_at)
        self.products = [p for c in CATEGORIES for p in c[4]]
        self.product_bytes = _byte_table(self.products)
        self.channel_bytes = _byte_table(SALES_CHANNELS)
        self.product_objects = np.array(self.products, dtype=object)
        self.channel_objects = np.array(SALES_CHANNELS, dtype=object)

    def _copy(self, table: str, columns: list[str], block: bytes) -> None:
        with connection.cursor() as cursor, copy_into(cursor, table, columns) as copy:
            copy.write(block)

    def _insert(self, table: str, columns: list[str], rows) -> None:
        sql = (f"INSERT INTO {connection.ops.quote_name(table)} ({', '.join(columns)}) "
               f"VALUES ({', '.join(['%s'] * len(columns))})")
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)

    def customers(self, people, *, ids, first_number, calendar, owners) -> None:
        columns = ["id", "number", "name", "industry", "region", "owner_id", "acquired_on",
                   "acquisition_channel", "referred_by_id", "status", "lost_on", "yearly_wallet",
                   "is_demo", "created_at", "updated_at"]
        channel = np.array([c.value for c, _ in CHANNELS], dtype=object)[people["channel"]]
        channel[people["referred"]] = Customer.Channel.REFERRAL.value
        referred_by = np.where(people["referred"], ids[np.maximum(people["referrer"], 0)], -1)
        status = np.where(people["lost"], Customer.Status.LOST.value, Customer.Status.ACTIVE.value)
        lost_on = calendar.text[calendar.index(people["lost_on"])]
        acquired = calendar.text[calendar.index(np.maximum(people["acquired"], calendar.low))]
        wallet = people["wallet"]
        industries = [name for name, _ in INDUSTRIES]
        regions = [name for name, _, _ in REGIONS]
        true = "t" if self.postgres else True
        rows = [
            (i, f"C{first_number + k:06d}", name, industries[ind], regions[reg], owner, acq, chan,
             ref if ref > 0 else None, st, lost if st == "lost" else None,
             (f"{w:.2f}" if self.postgres else w) if w == w else None, true, self.created_at, self.created_at)
            for k, (i, name, ind, reg, owner, acq, chan, ref, st, lost, w) in enumerate(zip(
                ids.tolist(), people["name"], people["industry"].tolist(), people["region"].tolist(),
                owners.tolist(), acquired.tolist(), channel.tolist(), referred_by.tolist(), status.tolist(),
                lost_on.tolist(), wallet.tolist(), strict=False))
        ]
        table = Customer._meta.db_table
        if self.postgres:
            with connection.cursor() as cursor, copy_into(cursor, table, columns) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            self._insert(table, columns, rows)

    def transactions(self, lines, *, customer_ids, first_number, calendar) -> None:
        columns = ["customer_id", "external_id", "date", "revenue", "cost_of_goods", "product", "channel"]
        table = Transaction._meta.db_table
        n = len(customer_ids)
        # Recognisable and stable across runs: DEMO-<customer number>-<line of that customer>.
        for part in _batches(n):
            ids = customer_ids[part]
            external = np.hstack([
                np.tile(np.frombuffer(b"DEMO-", dtype=np.uint8), (len(ids), 1)),
                _digits(first_number + lines["customer"][part], 7, zero_pad=True),
                np.full((len(ids), 1), ord("-"), dtype=np.uint8),
                _digits(lines["line_no"][part], 5, zero_pad=True),
            ])
            day = calendar.index(lines["day"][part])
            if self.postgres:
                self._copy(table, columns, copy_block([
                    _digits(ids, 19), external, calendar.bytes[day], _money(lines["revenue"][part]),
                    _money(lines["cost"][part]), self.product_bytes[lines["product"][part]],
                    self.channel_bytes[lines["channel"][part]],
                ]))
            else:
                self._insert(table, columns, zip(
                    ids.tolist(), _ascii_strings(external), calendar.text[day].tolist(),
                    (lines["revenue"][part] / 100).tolist(), (lines["cost"][part] / 100).tolist(),
                    self.product_objects[lines["product"][part]].tolist(),
                    self.channel_objects[lines["channel"][part]].tolist(), strict=False,
                ))

    def events(self, events, *, customer_ids, type_ids, logged_by, calendar) -> None:
        columns = ["customer_id", "service_type_id", "date", "quantity", "note", "logged_by_id",
                   "created_at", "updated_at"]
        table = ServiceEvent._meta.db_table
        notes = events["notes"]
        created = self.created_at
        for part in _batches(len(customer_ids)):
            day = calendar.index(events["day"][part])
            note, number = events["note"][part], events["number"][part]
            if self.postgres:
                stamp = np.tile(np.frombuffer(created.encode(), dtype=np.uint8), (len(note), 1))
                self._copy(table, columns, copy_block([
                    _digits(customer_ids[part], 19), _digits(type_ids[part], 19), calendar.bytes[day],
                    _money(events["quantity"][part], 6),
                    np.hstack([notes.prefix_bytes[note], _digits(number, 7), notes.suffix_bytes[note]]),
                    _digits(logged_by[part], 19), stamp, stamp,
                ]))
            else:
                text = [f"{notes.prefix[t]}{k}{notes.suffix[t]}" for t, k in zip(note.tolist(), number.tolist(), strict=False)]
                self._insert(table, columns, zip(
                    customer_ids[part].tolist(), type_ids[part].tolist(), calendar.text[day].tolist(),
                    (events["quantity"][part] / 100).tolist(), text, logged_by[part].tolist(),
                    [created] * len(text), [created] * len(text), strict=False,
                ))


class _fast_sqlite_writes:
    """SQLite: skip fsync while seeding (outside a transaction only: the pragma needs that)."""

    def __enter__(self):
        self.previous = None
        if connection.vendor == "sqlite" and not connection.in_atomic_block:
            with connection.cursor() as cursor:
                self.previous = cursor.execute("PRAGMA synchronous").fetchone()[0]
                cursor.execute("PRAGMA synchronous = OFF")
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA synchronous = {int(self.previous)}")
        return False


@contextmanager
def _bulk_load(models_, *, say):
    """PostgreSQL: load ``models_``' tables without secondary indexes and foreign keys.

    Maintaining four indexes and a foreign-key trigger per row made COPY into the
    transaction table about 2.5 times slower than COPY into the bare table plus one index
    build per index at the end (2.4M rows: 41 s against 16 s). Only used inside the one
    transaction of a seed into a database holding nothing but demo data: the definitions
    are read from the catalogue and restored verbatim, and a failure rolls back the drops.
    Other sessions wait for the tables until the seed commits.
    """
    tables = [model._meta.db_table for model in models_]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        # Unique and foreign-key constraints (the primary keys stay: other tables point at them).
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('u', 'f') ORDER BY contype DESC, conname",
            [tables],
        )
        constraints = cursor.fetchall()
        # Plain indexes, not those that back a constraint.
        cursor.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1",
            [tables],
        )
        indexes = cursor.fetchall()
        for table, name, _, _ in reversed(constraints):  # foreign keys first
            cursor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {quote(name)}")
    yield
    clock = time.perf_counter()
    with connection.cursor() as cursor:
        for _, definition in indexes:
            cursor.execute(definition)
        # Unique constraints before the foreign keys (ordered by contype: 'u' > 'f').
        for table, name, _, definition in constraints:
            cursor.execute(f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition}")
        # Fresh statistics, so the first queries on the new data get sensible plans.
        cursor.execute("ANALYZE " + ", ".join(quote(t) for t in tables))
    say(f"indexes and constraints rebuilt in {time.perf_counter() - clock:.1f} s")


# --- value history -----------------------------------------------------------------------------

def history_dates(*, as_of: date, months: int) -> list[date]:
    """Monthly as-of dates over the last ``months`` months, oldest first, ending at as_of.

    Month ends are kept where as_of is one (31 Mar -> 28/29 Feb), like pandas' month offsets.
    """
    import pandas as pd

    return [(pd.Timestamp(as_of) - pd.DateOffset(months=k)).date() for k in range(months - 1, -1, -1)]


def seed_value_history(*, as_of: date | None = None, months: int = 12,
                       progress: Callable[[str], None] | None = None) -> list[int]:
    """Value the company at each monthly as-of date (history_dates), oldest first, so value
    history, segment movement, worklists and value-change explanations show on first start.

    Dates that already have a completed run are skipped (running it twice adds nothing). The
    dashboard cache is warmed once, after the last run. Returns the ids of the runs made.
    """
    from valuation import services as valuation

    as_of = as_of or timezone.localdate()
    say = progress or (lambda message: None)
    dates = [day for day in history_dates(as_of=as_of, months=months) if not valuation.has_completed_run(as_of=day)]
    made = []
    for number, day in enumerate(dates, start=1):
        started = time.perf_counter()
        run = valuation.run_valuation(as_of=day, trigger="command", warm=number == len(dates))
        if run.status != run.Status.COMPLETED:
            raise RuntimeError(f"Valuation as of {day} ended {run.status}: {run.error}")
        made.append(run.pk)
        say(f"  valued as of {day} ({number}/{len(dates)}) in {time.perf_counter() - started:.1f} s")
    return made


# --- survey answers (NPS) ------------------------------------------------------------------------

SURVEY_SHARE = 0.45  # of customers who answered at least once in the last two years
SURVEY_CONTACTS = ["Einkauf", "Technik", "Geschäftsführung", "Instandhaltung", "Qualität"]
SURVEY_COMMENTS = {
    "low": ["Lieferzeiten zu lang", "Preise gestiegen", "Ansprechpartner schwer erreichbar", "Reklamation zäh"],
    "mid": ["Im Großen und Ganzen zufrieden", "Solide, aber nichts Besonderes", ""],
    "high": ["Schnelle Hilfe an der Hotline", "Sehr gute Schulung", "Verlässlicher Partner", ""],
}


def _seed_survey_answers(*, seed: int, as_of: date) -> int:
    """NPS answers for about SURVEY_SHARE of the demo customers, one to three each over the last
    two years; lost customers answer lower. Deterministic for a seed."""
    rng = np.random.default_rng([seed, 7001])
    rows = np.array(list(Customer.objects.filter(is_demo=True).order_by("pk").values_list("pk", "status")),
                    dtype=object)
    if not len(rows):
        return 0
    ids, lost = rows[:, 0].astype(np.int64), rows[:, 1] == Customer.Status.LOST
    answering = rng.random(len(ids)) < SURVEY_SHARE
    base = rng.normal(7.4, 1.9, len(ids)) - 2.8 * lost
    counts = rng.integers(1, 4, len(ids)) * answering
    who = np.repeat(np.arange(len(ids)), counts)
    scores = np.clip(np.rint(base[who] + rng.normal(0.0, 1.0, len(who))), 0, 10).astype(int)
    days = rng.integers(0, 730, len(who))
    contacts = rng.integers(0, len(SURVEY_CONTACTS), len(who))
    picks = rng.integers(0, 1000, len(who))
    answers = []
    for k in range(len(who)):
        mood = "low" if scores[k] <= 6 else ("high" if scores[k] >= 9 else "mid")
        comments = SURVEY_COMMENTS[mood]
        answers.append(SurveyAnswer(
            customer_id=int(ids[who[k]]), answered_on=as_of - timedelta(days=int(days[k])), score=int(scores[k]),
            contact=SURVEY_CONTACTS[contacts[k]], comment=comments[picks[k] % len(comments)],
            external_id=f"demo-nps-{k}",
        ))
    SurveyAnswer.objects.bulk_create(answers, batch_size=5000)
    return len(answers)
