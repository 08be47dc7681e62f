"""The free services of DOMAIN.md with example standard costs (rough figures, editable)."""

from datetime import date
from decimal import Decimal

# Valid from a date before any plausible history, so every logged service has a cost.
EXAMPLE_COSTS_VALID_FROM = date(2000, 1, 1)

# code, name, unit, cost per unit, description
SERVICE_CATALOGUE = [
    ("inside_sales_help", "Inside-sales research and help", "hour", "55.00",
     "Research, quotes and help by inside sales beyond the normal order process."),
    ("technical_tip", "Technical tip", "occurrence", "40.00",
     "A technical hint or application advice by phone or e-mail."),
    ("training", "Training or seminar", "day", "950.00",
     "Trainings and seminars for the customer's staff."),
    ("market_information", "Market information", "occurrence", "60.00",
     "Market, price or regulation information passed on to the customer."),
    ("order_change", "Order change", "occurrence", "35.00",
     "Changes to a placed order: quantities, dates, delivery addresses."),
    ("commissioning", "Commissioning", "day", "1100.00",
     "Commissioning of delivered equipment at the customer's site."),
    ("hotline", "Free hotline", "hour", "65.00",
     "Support through the free service hotline."),
    ("remote_optimisation", "Remote optimisation", "hour", "95.00",
     "Remote optimisation of the customer's plant."),
    ("joint_market_research", "Joint market research", "day", "1200.00",
     "Market research done together with the customer."),
    ("joint_development", "Joint product development", "day", "1400.00",
     "Joint product development with the customer as lead user."),
]


# German names of the catalogue (editable in the settings page like the English ones).
GERMAN_NAMES = {
    "inside_sales_help": "Recherche und Hilfe durch den Innendienst",
    "technical_tip": "Technischer Tipp",
    "training": "Schulung oder Seminar",
    "market_information": "Marktinformation",
    "order_change": "Auftragsänderung",
    "commissioning": "Inbetriebnahme",
    "hotline": "Kostenlose Hotline",
    "remote_optimisation": "Fernoptimierung",
    "joint_market_research": "Gemeinsame Marktforschung",
    "joint_development": "Gemeinsame Produktentwicklung",
}


def catalogue_rows():
    for order, (code, name, unit, cost, description) in enumerate(SERVICE_CATALOGUE, start=1):
        yield {"code": code, "name": name, "name_de": GERMAN_NAMES.get(code, ""), "unit": unit, "cost": Decimal(cost),
               "description": description, "sort_order": order}


def install_catalogue(service_type_model, standard_cost_model) -> None:
    """Create the catalogue where missing (migrations pass their historical models)."""
    # An early migration's model has no German name yet; a later migration adds those.
    fields = {field.name for field in service_type_model._meta.get_fields()}
    for row in catalogue_rows():
        service_type, _ = service_type_model.objects.get_or_create(
            code=row["code"],
            defaults={k: row[k] for k in ("name", "name_de", "unit", "description", "sort_order") if k in fields},
        )
        standard_cost_model.objects.get_or_create(
            service_type=service_type, valid_from=EXAMPLE_COSTS_VALID_FROM, defaults={"cost_per_unit": row["cost"]}
        )
