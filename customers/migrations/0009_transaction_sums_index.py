from django.db import migrations, models

TABLE = "customers_transaction"


def vacuum_new_rows_sooner(apps, schema_editor):
    # The sums index is read alone only where the visibility map marks the rows' pages as
    # seen by all; rows added since the table's last vacuum are fetched from the table.
    # Vacuum it after each 1 % of new rows, not PostgreSQL's 20 % (at 20M rows, 4M rows).
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} SET (autovacuum_vacuum_insert_scale_factor = 0.01)")


def vacuum_new_rows_as_before(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE {TABLE} RESET (autovacuum_vacuum_insert_scale_factor)")


class Migration(migrations.Migration):
    """Replaces the (customer, date) index by one that also holds the amounts and the product.
    At 20.9M transactions it builds in about 20 s (writes wait meanwhile; dropping the old
    index takes the table for a moment, reads too) and takes 1.4 GB instead of 0.5 GB."""

    dependencies = [
        ("customers", "0008_transaction_cents"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="transaction",
            index=models.Index(fields=["customer", "date"], include=("revenue_cents", "cost_of_goods_cents", "product"),
                               name="txn_customer_date_sums_idx"),
        ),
        migrations.RemoveIndex(
            model_name="transaction",
            name="txn_customer_date_idx",
        ),
        migrations.RunPython(vacuum_new_rows_sooner, vacuum_new_rows_as_before, elidable=False),
    ]
