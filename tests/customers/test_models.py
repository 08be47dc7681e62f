import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from customers.models import Customer, Transaction
from tests.factories import CustomerFactory, TransactionFactory

pytestmark = pytest.mark.django_db


def test_duplicate_transaction_external_id_is_rejected():
    first = TransactionFactory(external_id="ERP-4711")
    duplicate = Transaction(customer=first.customer, external_id="ERP-4711", date=dt.date(2025, 1, 2), revenue=1)
    with pytest.raises(ValidationError) as excinfo:
        duplicate.full_clean()
    assert "A transaction with this external id already exists." in str(excinfo.value)
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()
    assert Transaction.objects.filter(external_id="ERP-4711").count() == 1


@pytest.mark.parametrize(
    "amount", ["0.01", "1234567.89", "99999999999.99", "-250.10", "0.10", "33.33"]
)
def test_money_round_trips_exactly(amount):
    saved = TransactionFactory(revenue=Decimal(amount), cost_of_goods=Decimal(amount) / 2)
    loaded = Transaction.objects.get(pk=saved.pk)
    assert loaded.revenue == Decimal(amount)
    assert isinstance(loaded.revenue, Decimal)
    assert str(loaded.revenue) == amount
    assert loaded.margin == Decimal(amount) - loaded.cost_of_goods


@pytest.mark.parametrize("amount", ["0.29", "0.01", "99999999999.99", "-250.10", "0.57", "33.33", "0"])
def test_the_cents_the_nightly_sums_are_the_amounts_exactly_and_follow_every_change(amount):
    # 0.29 * 100 is 28.999... as a float, which SQLite would truncate to 28 without rounding.
    cost = (Decimal(amount) / 3).quantize(Decimal("0.01"))  # amounts reach the table in cents
    saved = TransactionFactory(revenue=Decimal(amount), cost_of_goods=cost)
    loaded = Transaction.objects.get(pk=saved.pk)
    assert loaded.revenue_cents == int(loaded.revenue * 100)
    assert loaded.cost_of_goods_cents == int(loaded.cost_of_goods * 100)
    Transaction.objects.filter(pk=saved.pk).update(revenue=Decimal("-0.07"), cost_of_goods=Decimal("12.34"))
    changed = Transaction.objects.get(pk=saved.pk)
    assert (changed.revenue_cents, changed.cost_of_goods_cents) == (-7, 1234)


def test_lost_customer_needs_a_date():
    customer = CustomerFactory.build(status=Customer.Status.LOST, lost_on=None)
    with pytest.raises(ValidationError) as excinfo:
        customer.full_clean()
    assert "needs the date it was lost" in str(excinfo.value)
    with pytest.raises(IntegrityError), transaction.atomic():
        customer.save()


def test_negative_wallet_is_rejected():
    customer = CustomerFactory.build(yearly_wallet=Decimal("-1"))
    with pytest.raises(ValidationError) as excinfo:
        customer.full_clean()
    assert "cannot be negative" in str(excinfo.value)


def test_referral_chain_is_kept():
    founder = CustomerFactory()
    referred = CustomerFactory(referred_by=founder, acquisition_channel=Customer.Channel.REFERRAL)
    second = CustomerFactory(referred_by=referred)
    assert list(founder.referrals.all()) == [referred]
    assert second.referred_by.referred_by == founder
