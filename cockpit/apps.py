from django.apps import AppConfig


class CockpitConfig(AppConfig):
    """The pages on top of customers, services and valuation, plus CSV import and demo seeding."""

    name = "cockpit"
