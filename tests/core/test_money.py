from decimal import Decimal

from django.test import override_settings
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from core.templatetags.money import format_money, percent, quantity


def test_money_in_english_and_german():
    with translation.override("en"):
        assert format_money(Decimal("1234.56")) == "€1,234.56"
        assert format_money(Decimal("-1234.5")) == "-€1,234.50"
        assert format_money(Decimal("1234567.891"), 0) == "€1,234,568"
    with translation.override("de"):
        assert format_money(Decimal("1234.56")) == "1.234,56\u00a0€"
        assert format_money(Decimal("-0.001")) == "0,00\u00a0€"
    assert format_money(None) == "–"


@override_settings(CVM_CURRENCY="CHF")
def test_money_uses_the_configured_currency():
    with translation.override("en"):
        assert format_money(Decimal("10")) == "CHF\u00a010.00"


def test_percent_and_quantity():
    with translation.override("de"):
        assert percent(0.873) == "87\u00a0%"
        assert quantity(Decimal("1.50")) == "1,5"
        assert quantity(Decimal("1250.00")) == "1.250"
    with translation.override("en"):
        assert percent(0.8) == "80%"
        assert quantity(Decimal("2.00")) == "2"


@given(
    amount=st.decimals(min_value=Decimal("-1e15"), max_value=Decimal("1e15"), allow_nan=False, places=4)
    | st.sampled_from([Decimal("-0"), Decimal("0E-9"), Decimal("-0.004"), Decimal("999.995"), Decimal("1E+14")]),
    decimal_pos=st.integers(min_value=0, max_value=3),
    language=st.sampled_from(["en", "de", None]),
)
def test_grouped_numbers_read_as_djangos_number_format(amount, decimal_pos, language):
    from django.utils import formats
    from django.utils.translation import get_language

    from core.templatetags.money import _rounded, grouped_number

    rounded = _rounded(amount, decimal_pos)
    with translation.override(language):
        active = get_language()
        expected = formats.number_format(rounded, decimal_pos=decimal_pos, use_l10n=True, force_grouping=True)
        assert grouped_number(rounded, decimal_pos, active) == expected
