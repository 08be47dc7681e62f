"""Staging tables: the checked rows of the whole file, loaded, indexed, checked for duplicates and counted."""

from __future__ import annotations

import csv
import io

import pandas as pd
from django.db import connection
from django.utils.translation import gettext as _

from core.copy_text import copy_into

from .results import MAX_ERRORS_SHOWN, ImportResult, RowError

# --- staging tables and merges ----------------------------------------------------------------------


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _distinct(left: str, right: str) -> str:
    return f"{left} IS DISTINCT FROM {right}" if _is_postgres() else f"{left} IS NOT {right}"


class Staging:
    """A temporary table holding the checked rows of the whole file."""

    def __init__(self, name: str, columns: dict[str, str]):
        self.name = name
        self.columns = columns  # column -> SQL type

    def create(self, cursor) -> None:
        cols = ", ".join(f"{name} {sql_type}" for name, sql_type in self.columns.items())
        cursor.execute(f"DROP TABLE IF EXISTS {self.name}")
        suffix = " ON COMMIT DROP" if _is_postgres() else ""
        cursor.execute(f"CREATE TEMPORARY TABLE {self.name} ({cols}){suffix}")

    def load(self, cursor, frame: pd.DataFrame) -> None:
        names = list(self.columns)
        frame = frame[names]
        if _is_postgres():
            buffer = io.StringIO()
            # csv.writer is several times faster than DataFrame.to_csv; None becomes an empty field (NULL).
            values = frame.astype(object).where(frame.notna(), None)
            csv.writer(buffer, lineterminator="\n").writerows(values.itertuples(index=False, name=None))
            with copy_into(cursor, self.name, names, options="WITH (FORMAT csv)") as copy:
                copy.write(buffer.getvalue())
        else:
            marks = ", ".join(["%s"] * len(names))
            rows = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
            cursor.executemany(f"INSERT INTO {self.name} ({', '.join(names)}) VALUES ({marks})", list(rows))

    def index(self, cursor, column: str) -> None:
        cursor.execute(f"CREATE INDEX {self.name}_{column} ON {self.name} ({column})")
        if _is_postgres():
            # Temporary tables are never auto-analysed; without statistics the joins below
            # get nested-loop plans that take minutes on a million rows.
            cursor.execute(f"ANALYZE {self.name}")

    def drop(self, cursor) -> None:
        cursor.execute(f"DROP TABLE IF EXISTS {self.name}")


def _fetch(cursor, sql: str, params=()) -> list[tuple]:
    cursor.execute(sql, params)
    return cursor.fetchall()


def _report_duplicates(cursor, table: str, key: str, column: str, result: ImportResult) -> None:
    """Every row whose key already appeared on an earlier line of the file (the first ones listed)."""
    sql = f"""
        SELECT s.line, s.{key}, f.first_line, COUNT(*) OVER () FROM {table} s
        JOIN (SELECT {key}, MIN(line) AS first_line FROM {table}
              WHERE {key} IS NOT NULL AND {key} <> '' GROUP BY {key} HAVING COUNT(*) > 1) f ON f.{key} = s.{key}
        WHERE s.line > f.first_line ORDER BY s.line LIMIT {MAX_ERRORS_SHOWN}
    """
    rows = _fetch(cursor, sql)
    shown = [RowError(line, column, _("Duplicate %(column)s “%(value)s”: already on line %(first)s.") % {"column": column, "value": value, "first": first}) for line, value, first, _total in rows]
    result.add_found(shown, rows[0][3] if rows else 0)


def _counts(cursor, sql: str, result: ImportResult, *, staging: str | None = None) -> None:
    """New, updated and unchanged rows. With `staging`, only the rows staged there (those that
    passed the checks) count: a bad row is no new row."""
    matched, changed = _fetch(cursor, sql)[0]
    matched, changed = int(matched or 0), int(changed or 0)
    staged = int(_fetch(cursor, f"SELECT COUNT(*) FROM {staging}")[0][0]) if staging else result.rows
    result.new = max(0, staged - matched)
    result.updated = changed
    result.unchanged = matched - changed
