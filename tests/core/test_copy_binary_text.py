"""Text fields of binary COPY rows, byte for byte: each row is its length then its UTF-8."""

import struct

import numpy as np
import pytest

from core import copy_binary


def _sent(field: copy_binary.Field) -> list[bytes]:
    return [bytes(row[:used]) for row, used in zip(field.matrix, field.used, strict=True)]


def _expected(values, prefix=b"") -> list[bytes]:
    return [struct.pack(">i", len(prefix) + len(v.encode())) + prefix + v.encode() for v in values]


@pytest.mark.parametrize("values", [
    ["segment_a", "", "B", "x" * 40],  # ASCII: numpy's cells cast to bytes
    ["Kälte", "", "A", "日本", "x" * 40],  # not ASCII: encoded
    ["", "", ""],
    [],
])
def test_text_sends_each_value_as_its_length_and_utf8(values):
    assert _sent(copy_binary.text(values)) == _expected(values)
    assert _sent(copy_binary.text(np.array(values, dtype=object))) == _expected(values)


@pytest.mark.parametrize("docs", [['{"hotline": 12.5}', "{}"], ['{"hotline": 12.5}', "{}", '{"ä": 1}']])
def test_jsonb_prefixes_the_version_byte(docs):
    assert _sent(copy_binary.jsonb(docs)) == _expected(docs, prefix=b"\x01")
