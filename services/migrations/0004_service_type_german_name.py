from django.db import migrations, models


def name_the_catalogue_in_german(apps, schema_editor):
    """Give the catalogue's service types their German names where none is set yet."""
    from services.catalogue import GERMAN_NAMES

    service_type = apps.get_model("services", "ServiceType")
    for code, name_de in GERMAN_NAMES.items():
        service_type.objects.filter(code=code, name_de="").update(name_de=name_de)


class Migration(migrations.Migration):
    dependencies = [("services", "0003_service_log_order_index")]
    operations = [
        migrations.AlterField(
            model_name="servicetype", name="name", field=models.CharField(max_length=100, verbose_name="name (English)"),
        ),
        migrations.AddField(
            model_name="servicetype", name="name_de",
            field=models.CharField(blank=True, max_length=100, verbose_name="name (German)"),
        ),
        migrations.RunPython(name_the_catalogue_in_german, migrations.RunPython.noop),
    ]
