"""The README's role table says what customers.access decides: each row is checked against
the abilities, so the table cannot drift from the code."""

import re
from pathlib import Path

import pytest

from customers.access import (
    MANAGERS,
    MONEY_ROLES,
    can_change_entry,
    can_log_for,
    manages,
    sees_money,
    visible_customers,
)
from customers.roles import Role
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

README = Path(__file__).resolve().parents[2] / "README.md"
COLUMNS = ("sales rep", "inside sales", "manager")


def role_table() -> dict[str, dict[str, str]]:
    """The "Who sees what" table: row label -> {role: cell}."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Who sees what", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert tuple(header[1:]) == COLUMNS
    table = {}
    for line in rows[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        table[cells[0]] = dict(zip(COLUMNS, cells[1:], strict=True))
    return table


def says(cell: str) -> str:
    """The cell's verdict in one word: no, own or all."""
    words = re.sub(r"[*()]", "", cell).lower()
    if words.startswith(("no", "hidden")):
        return "no"
    if "own" in words:
        return "own"
    return "all"


@pytest.fixture
def people(manager, inside_sales, rep, other_rep):
    return {"sales rep": rep, "inside sales": inside_sales, "manager": manager, "other rep": other_rep}


def verdict(may_own: bool, may_other: bool) -> str:
    return "all" if may_other else ("own" if may_own else "no")


def test_readme_role_table_matches_the_abilities(people):
    table = role_table()
    own = CustomerFactory(owner=people["sales rep"])
    other = CustomerFactory(owner=people["other rep"])
    for role in COLUMNS:
        user = people[role]
        seen = set(visible_customers(user=user).values_list("pk", flat=True))
        computed = {
            "customers": verdict(own.pk in seen, other.pk in seen),
            "value from the customer (revenue, margin, CLV, P(alive), profit)": "all" if sees_money(user) else "no",
            "log a service": verdict(can_log_for(user, own), can_log_for(user, other)),
            "edit or delete a service entry": verdict(
                can_change_entry(user, logged_by_id=user.pk), can_change_entry(user, logged_by_id=people["other rep"].pk)
            ),
            "value statement (HTML and PDF)": verdict(
                sees_money(user) and own.pk in seen, sees_money(user) and other.pk in seen
            ),
            'segment dashboard, settings, "recompute now", imports, exports, admin': "all" if manages(user) else "no",
            "API: transactions": verdict(
                Role(role) in MONEY_ROLES and own.pk in seen, Role(role) in MANAGERS
            ),
        }
        for row, expected in computed.items():
            assert says(table[row][role]) == expected, (row, role, table[row][role])


def test_the_check_reads_the_table():
    """A table edited to grant inside sales the money columns would fail the check above."""
    table = role_table()
    assert says(table["value from the customer (revenue, margin, CLV, P(alive), profit)"]["inside sales"]) == "no"
    assert says("yes") == "all" and says("own entries") == "own" and says("**hidden** (not in the HTML)") == "no"
