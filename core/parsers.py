"""The API's JSON parser. Its own module: DRF's settings import it while rest_framework loads."""

import codecs
import json
import math

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding

# Deeper than any body the API documents (a bulk list of flat rows is 2 levels deep).
MAX_JSON_DEPTH = 20


class SafeJSONParser(JSONParser):
    """JSON whose numbers are finite and whose nesting is bounded: `1e400` (infinity) and
    `[[[[...]]]]` 5,000 levels deep are 400s here instead of server errors further on."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})
        try:
            data = json.load(codecs.getreader(encoding)(stream), parse_constant=_no_constant, parse_float=_finite_float)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if _depth_exceeds(data, MAX_JSON_DEPTH):
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
        return data


def _no_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text[:20]} is out of range")
    return number


def _depth_exceeds(data, limit: int) -> bool:
    """Iterative, so the check itself cannot run out of stack."""
    stack = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, (list, dict)))
    return False
