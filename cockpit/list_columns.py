"""Which columns the customer list shows: chosen by the user, remembered in the session.

A column is a key the template knows; `money` columns are figures of the value FROM the
customer, never shown to inside sales whatever they choose.
"""

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

SESSION_KEY = "cvm_list_columns"


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    money: bool = False
    default: bool = True


COLUMNS = [
    Column("owner", _("Owner")),
    Column("segment", _("Segment")),
    Column("abc_class", _("ABC")),
    Column("revenue_window", _("Revenue"), money=True),
    Column("margin_window", _("Margin"), money=True),
    Column("profit_after_services", _("Profit after services"), money=True),
    Column("clv", _("CLV"), money=True),
    Column("clv_range", _("CLV range"), money=True, default=False),
    Column("p_alive", _("P(alive)"), money=True),
    Column("value_to_customer", _("Value to customer")),
    Column("service_count", _("Services")),
]
KEYS = {column.key for column in COLUMNS}


def offered_columns(*, show_money: bool, is_rep: bool) -> list[Column]:
    """The columns this user may choose from (a rep's list has no owner column: all are theirs)."""
    return [c for c in COLUMNS if (show_money or not c.money) and not (is_rep and c.key == "owner")]


def chosen_columns(request, *, offered: list[Column]) -> list[str]:
    """The keys to show: from the column chooser when it was sent, else the session's last choice,
    else the defaults. Unknown or not-offered keys are dropped."""
    allowed = [c.key for c in offered]
    if request.GET.get("columns") == "1":
        keys = [key for key in request.GET.getlist("col") if key in allowed]
        request.session[SESSION_KEY] = keys
    else:
        stored = request.session.get(SESSION_KEY)
        keys = [key for key in stored if key in allowed] if isinstance(stored, list) else [c.key for c in offered if c.default]
    return [key for key in allowed if key in keys]  # always in the table's order
