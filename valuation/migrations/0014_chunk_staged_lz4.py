from django.db import migrations

# A chunk's staged values are ~17 MB of numpy arrays. PostgreSQL's default TOAST compression
# (pglz) took 0.7-1.1 s per chunk to store them (some 20 s of a run at a million customers);
# lz4 took 0.16 s for the same bytes, at about the same size. Only new values are compressed
# the new way. Servers built without lz4 keep pglz.
TABLE = "valuation_valuationchunk"


def _has_lz4(cursor) -> bool:
    cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
    row = cursor.fetchone()
    return bool(row and row[0])


def use_lz4(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        if _has_lz4(cursor):
            cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN staged SET COMPRESSION lz4")


def use_default(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN staged SET COMPRESSION default")


class Migration(migrations.Migration):
    dependencies = [
        ("valuation", "0013_run_summary_view_packed"),
    ]

    operations = [
        migrations.RunPython(use_lz4, use_default),
    ]
