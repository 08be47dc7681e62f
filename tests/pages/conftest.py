import pytest

from tests.cockpit.factories import CustomerValueFactory, ValuationRunFactory
from tests.factories import CustomerFactory


@pytest.fixture
def run(db):
    return ValuationRunFactory()


@pytest.fixture
def rep_customer(rep, run):
    customer = CustomerFactory(owner=rep, name="Alpha Maschinenbau GmbH", number="K-1001")
    CustomerValueFactory(run=run, customer=customer)
    return customer


@pytest.fixture
def other_customer(other_rep, run):
    customer = CustomerFactory(owner=other_rep, name="Beta Anlagen AG", number="K-2002")
    CustomerValueFactory(run=run, customer=customer)
    return customer

