from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    # The shared cache lives in a table of its own (settings.CACHES); idempotent.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("valuation", "0002_customer_list_sort_indexes")]
    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
