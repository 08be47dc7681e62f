import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from customers.models import Customer, Transaction
from services.models import ServiceEvent, ServiceType


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password("secret-pass-123")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    number = factory.Sequence(lambda n: f"T{n:06d}")
    name = factory.Sequence(lambda n: f"Test Customer {n} GmbH")
    industry = "Mechanical engineering"
    region = "Bavaria"
    acquired_on = dt.date(2024, 1, 15)


class TransactionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Transaction

    customer = factory.SubFactory(CustomerFactory)
    external_id = factory.Sequence(lambda n: f"INV-{n:08d}")
    date = dt.date(2025, 3, 1)
    revenue = Decimal("1000.00")
    cost_of_goods = Decimal("700.00")


class ServiceEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ServiceEvent

    customer = factory.SubFactory(CustomerFactory)
    service_type = factory.LazyFunction(lambda: ServiceType.objects.get(code="hotline"))
    date = dt.date(2025, 3, 1)
    quantity = Decimal("1.00")
