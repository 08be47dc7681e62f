from django.db import migrations


def create_catalogue(apps, schema_editor):
    from services.catalogue import install_catalogue

    install_catalogue(apps.get_model("services", "ServiceType"), apps.get_model("services", "StandardCost"))


class Migration(migrations.Migration):
    dependencies = [("services", "0001_initial")]
    operations = [migrations.RunPython(create_catalogue, migrations.RunPython.noop)]
