"""Numbers typed by people: "2,5" and "2.5" both mean two and a half, in either language.

Django's localized DecimalField reads only the active language's separators ("2,5" on an
English page is rejected, or read as 25 where thousands separators are stripped). People in a
German company type both, so one lenient reading serves every form.
"""

import re
from decimal import Decimal, InvalidOperation

from django import forms
from django.utils import formats
from django.utils.translation import get_language

SPACES = re.compile(r"[\s\u00a0\u202f']")


def parse_decimal(text: str, *, language: str | None = None) -> Decimal | None:
    """The number in `text`, or None when it is not one.

    - both "," and "." present: the last one is the decimal separator ("1.234,5", "1,234.5");
    - one separator, several times: thousands ("1.234.567");
    - one separator once: decimal ("2,5", "2.5"), except before exactly three digits, where
      the language decides ("1.234" is 1234 in German, 1.234 in English).
    """
    text = SPACES.sub("", str(text or "").strip())
    if not text:
        return None
    sign = ""
    if text[0] in "+-−":
        sign, text = ("-" if text[0] in "-−" else ""), text[1:]
    if not re.fullmatch(r"[0-9.,]+", text) or not any(ch.isdigit() for ch in text):
        return None
    commas, points = text.count(","), text.count(".")
    if commas and points:
        decimal_mark = "," if text.rfind(",") > text.rfind(".") else "."
    elif commas + points == 0:
        decimal_mark = None
    else:
        mark = "," if commas else "."
        if text.count(mark) > 1:
            decimal_mark = None
        elif re.fullmatch(r"\d{1,3}[.,]\d{3}", text):
            german = (language or get_language() or "en").split("-")[0] == "de"
            decimal_mark = mark if (mark == ",") == german else None
        else:
            decimal_mark = mark
    integer_part = text.rsplit(decimal_mark, 1)[0] if decimal_mark else text
    if decimal_mark and decimal_mark in integer_part:
        return None
    groups = re.split(r"[.,]", integer_part)
    # Thousands separators must separate groups of three digits ("1.234.567", not "2,5,5").
    if len(groups) > 1 and (not 1 <= len(groups[0]) <= 3 or any(len(g) != 3 for g in groups[1:])):
        return None
    thousands = {",", "."} - {decimal_mark}
    for mark in thousands:
        text = text.replace(mark, "")
    if decimal_mark:
        if text.count(decimal_mark) > 1:
            return None
        text = text.replace(decimal_mark, ".")
    try:
        return Decimal(sign + text)
    except InvalidOperation:
        return None


class FlexibleDecimalField(forms.DecimalField):
    """A DecimalField that reads "2,5" and "2.5" alike and shows values in the page's format."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("localize", True)
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, (int, Decimal)):
            return Decimal(value)
        number = parse_decimal(str(value))
        if number is None or not number.is_finite():
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return number

    def prepare_value(self, value):
        if isinstance(value, Decimal):
            return formats.localize_input(value.normalize() if value == value.to_integral() else value)
        return super().prepare_value(value)
