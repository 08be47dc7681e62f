from django.db import migrations


def create_role_groups(apps, schema_editor):
    from customers.roles import install_role_groups

    install_role_groups(apps.get_model("auth", "Group"))


class Migration(migrations.Migration):
    dependencies = [("customers", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(create_role_groups, migrations.RunPython.noop)]
