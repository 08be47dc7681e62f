"""PostgreSQL: the value table becomes partitioned by run (valuation/history.py).

The model does not change. In the database the parent table `valuation_customervalue` holds no
rows and no indexes of its own: each run's rows live in their own partition with their own
indexes (the full set while the run is among the newest, the customer index once thinned),
so old runs can lose their list indexes and be dropped whole. A partitioned table's primary key
would have to include run_id and would put an index on every partition; ids stay unique through
their sequence and each run's partition has a unique index on id while it keeps its full set.
Rows written through the ORM for a run without a partition of its own go to a default partition
carrying the model's indexes. Nothing has a foreign key to the value table.

Index and constraint names in Django's migration state (cv_*_idx, customer_value_one_per_run)
do not exist on the parent: a later migration that alters them needs a RunSQL of its own.
SQLite keeps the plain table.
"""

from django.db import migrations

PARENT = "valuation_customervalue"
PLAIN = "valuation_customervalue_plain"
DEFAULT = "valuation_customervalue_default"


def _relkind(cursor, name):
    cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [name])
    row = cursor.fetchone()
    return row[0] if row else None


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    from valuation import history

    with schema_editor.connection.cursor() as cursor:
        if _relkind(cursor, PARENT) != "r":
            return
        cursor.execute(f"ALTER TABLE {PARENT} RENAME TO {PLAIN}")
        cursor.execute(
            f"CREATE TABLE {PARENT} (LIKE {PLAIN} INCLUDING CONSTRAINTS INCLUDING STORAGE) PARTITION BY LIST (run_id)"
        )
        cursor.execute(f"CREATE TABLE {DEFAULT} PARTITION OF {PARENT} DEFAULT")
        list_indexes = history.list_index_definitions()
        for sql in (
            f"CREATE UNIQUE INDEX cv_default_id ON {DEFAULT} (id)",
            f"CREATE UNIQUE INDEX cv_default_run_customer ON {DEFAULT} (run_id, customer_id)",
            f"CREATE INDEX cv_default_history ON {DEFAULT} (customer_id, run_id)",
            *(f"CREATE INDEX cv_default_{suffix} ON {DEFAULT} ({columns})" for suffix, columns in list_indexes),
        ):
            cursor.execute(sql)
        cursor.execute(f"SELECT DISTINCT run_id FROM {PLAIN} ORDER BY run_id")
        for (run_id,) in cursor.fetchall():
            table = history.partition_name(run_id)
            cursor.execute(
                f'CREATE TABLE "{table}" (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)'
            )
            cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{table}_run" CHECK (run_id = {int(run_id)})')
            cursor.execute(f'INSERT INTO "{table}" SELECT * FROM {PLAIN} WHERE run_id = %s', [run_id])
            for sql in history.full_index_sql(table, f"cv_r{int(run_id)}"):
                cursor.execute(sql)
            cursor.execute(f'ALTER TABLE {PARENT} ATTACH PARTITION "{table}" FOR VALUES IN ({int(run_id)})')
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {PLAIN}")
        (last_id,) = cursor.fetchone()
        cursor.execute(f"DROP TABLE {PLAIN}")
        cursor.execute(f"CREATE SEQUENCE {PARENT}_id_seq OWNED BY {PARENT}.id")
        cursor.execute(f"SELECT setval('{PARENT}_id_seq', %s, %s)", [max(last_id, 1), last_id > 0])
        cursor.execute(f"ALTER TABLE {PARENT} ALTER COLUMN id SET DEFAULT nextval('{PARENT}_id_seq')")
        for column, target, name in (
            ("customer_id", "customers_customer", "valuation_customervalue_customer_fk"),
            ("run_id", "valuation_valuationrun", "valuation_customervalue_run_fk"),
        ):
            cursor.execute(
                f"ALTER TABLE {PARENT} ADD CONSTRAINT {name} FOREIGN KEY ({column}) REFERENCES {target} (id) "
                "DEFERRABLE INITIALLY DEFERRED"
            )


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        if _relkind(cursor, PARENT) != "p":
            return
        cursor.execute(f"ALTER TABLE {PARENT} RENAME TO {PLAIN}")
        schema_editor.create_model(apps.get_model("valuation", "CustomerValue"))
        cursor.execute(
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            [PLAIN],
        )
        (columns,) = cursor.fetchone()
        cursor.execute(f"INSERT INTO {PARENT} ({columns}) OVERRIDING SYSTEM VALUE SELECT {columns} FROM {PLAIN}")
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{PARENT}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {PARENT}"
        )
        cursor.execute(f"DROP TABLE {PLAIN} CASCADE")
        cursor.execute("SELECT relname FROM pg_class WHERE relkind = 'r' AND relname ~ %s", [f"^{PARENT}_r[0-9]+$"])
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP TABLE "{name}"')


class Migration(migrations.Migration):
    dependencies = [
        ("valuation", "0009_value_mean_purchase_margin"),
    ]

    operations = [
        migrations.RunPython(partition, unpartition, elidable=False),
    ]
