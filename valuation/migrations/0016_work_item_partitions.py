"""PostgreSQL: the work item table becomes partitioned by run (valuation/worklist.py).

The model does not change. Only the latest run keeps work items, and each run replaced some
280,000 of them at a million customers with a DELETE and a COPY into the one table: 6 s of the
server, half of it foreign-key checks row by row and index entries beside the deleted ones.
Now a run's items are loaded into a table of their own, indexed, and attached as the run's
partition (the keys checked in one join); the previous run's partition is dropped whole.

The parent holds the model's unique constraint and indexes (each partition gets its own, and
an attached table's matching ones are taken over) and the foreign keys. A partitioned table's
primary key would have to include run_id: ids stay unique through their sequence and a unique
index on id in each partition. Rows written through the ORM go to a default partition.
SQLite keeps the plain table.
"""

from django.db import migrations

PARENT = "valuation_workitem"
PLAIN = "valuation_workitem_plain"
DEFAULT = "valuation_workitem_default"
SEQUENCE = "valuation_workitem_id_seq"
SERVICE_REASONS = "ARRAY['renegotiate'::character varying, 'service_spend'::character varying]::text[]"


def _relkind(cursor, name):
    cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [name])
    row = cursor.fetchone()
    return row[0] if row else None


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        if _relkind(cursor, PARENT) != "r":
            return
        cursor.execute(f"ALTER TABLE {PARENT} RENAME TO {PLAIN}")
        cursor.execute(f"CREATE TABLE {PARENT} (LIKE {PLAIN} INCLUDING CONSTRAINTS INCLUDING STORAGE) PARTITION BY LIST (run_id)")
        cursor.execute(f"CREATE TABLE {DEFAULT} PARTITION OF {PARENT} DEFAULT")
        cursor.execute(f"INSERT INTO {PARENT} SELECT * FROM {PLAIN}")
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {PLAIN}")
        (last_id,) = cursor.fetchone()
        cursor.execute(f"DROP TABLE {PLAIN}")  # with it its identity sequence, indexes and keys: their names are free
        cursor.execute(f"CREATE SEQUENCE {SEQUENCE} OWNED BY {PARENT}.id")
        cursor.execute(f"SELECT setval('{SEQUENCE}', %s, %s)", [max(last_id, 1), last_id > 0])
        for sql in (
            f"ALTER TABLE {PARENT} ALTER COLUMN id SET DEFAULT nextval('{SEQUENCE}')",
            f"CREATE UNIQUE INDEX {DEFAULT}_id ON {DEFAULT} (id)",
            f"ALTER TABLE {PARENT} ADD CONSTRAINT work_item_one_per_reason UNIQUE (run_id, customer_id, reason)",
            f"CREATE INDEX work_item_amount_idx ON {PARENT} (run_id, amount DESC, customer_id)",
            f"CREATE INDEX work_item_service_amount_idx ON {PARENT} (run_id, amount DESC, customer_id) "
            f"WHERE (reason::text = ANY ({SERVICE_REASONS}))",
            f"CREATE INDEX work_item_customer_idx ON {PARENT} (customer_id, run_id)",
            f"ALTER TABLE {PARENT} ADD CONSTRAINT valuation_workitem_customer_fk FOREIGN KEY (customer_id) "
            "REFERENCES customers_customer (id) DEFERRABLE INITIALLY DEFERRED",
            f"ALTER TABLE {PARENT} ADD CONSTRAINT valuation_workitem_run_fk FOREIGN KEY (run_id) "
            "REFERENCES valuation_valuationrun (id) DEFERRABLE INITIALLY DEFERRED",
        ):
            cursor.execute(sql)


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        if _relkind(cursor, PARENT) != "p":
            return
        cursor.execute(f"ALTER TABLE {PARENT} RENAME TO {PLAIN}")
        for name in ("work_item_one_per_reason", "work_item_amount_idx", "work_item_service_amount_idx",
                     "work_item_customer_idx"):
            cursor.execute(f"ALTER INDEX {name} RENAME TO {name}_old")
        cursor.execute(f"ALTER SEQUENCE {SEQUENCE} RENAME TO {SEQUENCE}_old")  # the new identity's name
        schema_editor.create_model(apps.get_model("valuation", "WorkItem"))
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
        cursor.execute(f"DROP TABLE {PLAIN} CASCADE")  # its partitions and its sequence with it
        # Tables a rebuild loaded and did not attach.
        cursor.execute("SELECT relname FROM pg_class WHERE relkind = 'r' AND relname ~ %s", [f"^{PARENT}_r[0-9]+_load$"])
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP TABLE "{name}"')


class Migration(migrations.Migration):
    dependencies = [
        ("valuation", "0015_run_summary_nps"),
    ]

    operations = [
        migrations.RunPython(partition, unpartition, elidable=False),
    ]
