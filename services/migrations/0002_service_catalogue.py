from django.db import migrations


def create_catalogue(apps, schema_editor):
    from services.catalogue import EXAMPLE_COSTS_VALID_FROM, catalogue_rows

    ServiceType = apps.get_model("services", "ServiceType")
    StandardCost = apps.get_model("services", "StandardCost")
    for row in catalogue_rows():
        service_type, _ = ServiceType.objects.get_or_create(
            code=row["code"],
            defaults={k: row[k] for k in ("name", "unit", "description", "sort_order")},
        )
        StandardCost.objects.get_or_create(
            service_type=service_type,
            valid_from=EXAMPLE_COSTS_VALID_FROM,
            defaults={"cost_per_unit": row["cost"]},
        )


class Migration(migrations.Migration):
    dependencies = [("services", "0001_initial")]
    operations = [migrations.RunPython(create_catalogue, migrations.RunPython.noop)]
