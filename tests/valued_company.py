"""A simulated company, and the same company valued twice (two runs a month apart): the
fixtures `company` and `two_runs` of the rep's-day tests in cockpit/ and valuation/."""

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest

from customers.models import Customer, Transaction
from services.models import ServiceType
from tests.factories import ServiceEventFactory
from valuation import services
from valuation.engine import BgNbdParams, GammaGammaParams
from valuation.engine.simulate import simulate_transactions

AS_OF = dt.date(2026, 6, 30)
PREVIOUS_AS_OF = dt.date(2026, 5, 31)


def simulated_company(
    *, buyers: int, seed: int, service_every_days: int, service_offset_days: int, industry: str = ""
) -> list[Customer]:
    """`buyers` customers buying by the BG/NBD story from 2024 up to AS_OF plus two who never
    bought; every third of the first 40 got four hotline calls, `service_every_days` apart."""
    tx = simulate_transactions(
        buyers,
        BgNbdParams(r=0.8, alpha=6.0, a=0.6, b=3.0),
        GammaGammaParams(p=4.0, q=3.0, v=120.0),
        dt.date(2024, 1, 1),
        AS_OF,
        seed=seed,
    )
    customers = Customer.objects.bulk_create(
        Customer(number=f"S{i:04d}", name=f"Sim {i}", acquired_on=dt.date(2024, 1, 1), industry=industry)
        for i in range(buyers + 2)
    )
    ids = np.array([c.pk for c in customers])
    Transaction.objects.bulk_create(
        Transaction(
            customer_id=int(ids[row.customer_id - 1]),
            external_id=f"SIM-{n}",
            date=row.date.date(),
            revenue=Decimal(f"{row.revenue:.2f}"),
            cost_of_goods=Decimal(f"{row.cost:.2f}"),
        )
        for n, row in enumerate(tx.itertuples())
    )
    hotline = ServiceType.objects.get(code="hotline")
    for customer in customers[:40:3]:
        for k in range(4):
            ServiceEventFactory(
                customer=customer,
                service_type=hotline,
                date=AS_OF - dt.timedelta(days=service_every_days * k + service_offset_days),
                quantity=Decimal("2.5"),
            )
    return customers


@pytest.fixture
def company(db):
    """90 customers, some spoiled with free services (some given between the two runs), one
    lost between the runs, two who never bought."""
    customers = simulated_company(
        buyers=88, seed=11, service_every_days=20, service_offset_days=3, industry="Packaging"
    )
    lost = customers[5]
    Customer.objects.filter(pk=lost.pk).update(status=Customer.Status.LOST, lost_on=dt.date(2026, 6, 10))
    return customers


@pytest.fixture
def two_runs(company):
    first = services.run_valuation(as_of=PREVIOUS_AS_OF)
    second = services.run_valuation(as_of=AS_OF)
    return first, second
