"""Kubernetes' CEL quantity library (``k8s.io/apiserver/pkg/cel/library/quantity.go``) for
cel-python: ``quantity()``, ``isQuantity()`` and the comparisons and arithmetic on the result.

Why exactly this: CRD rules such as "a request must not exceed its limit" call ``quantity()``,
and the embedded API has to answer as the real server does, so a value is parsed the way
``resource.ParseQuantity`` parses it (the same syntax and suffixes, an exponent that must fit an
int64, precision beyond nano rounded away from zero) and compared exactly (``decimal``, never
floats: ``1Ei`` and ``1E`` differ in the 16th digit).
"""

from __future__ import annotations

import decimal
import re
from typing import Any

_SYNTAX = re.compile(r"([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(.*)", re.DOTALL)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_CONTEXT = decimal.Context(prec=1000, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)
_NANO = decimal.Decimal("1e-9")
_INT64 = 2**63


class Quantity:
    """A parsed quantity: its exact value (rounded to nano, as the server stores it)."""

    __slots__ = ("value",)

    def __init__(self, value: decimal.Decimal) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quantity) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"Quantity({self.value})"


def parse_quantity(text: str) -> Quantity | None:
    """The quantity `text` spells, or None where `resource.ParseQuantity` returns an error."""
    match = _SYNTAX.fullmatch(text)
    if not match:
        return None
    sign, number, suffix = match.groups()
    if suffix in _BINARY:
        scale = decimal.Decimal(1024) ** _BINARY[suffix]
    elif suffix in _DECIMAL:
        scale = decimal.Decimal(10) ** _DECIMAL[suffix]
    elif len(suffix) > 1 and suffix[0] in "eE" and re.fullmatch(r"[+-]?[0-9]+", suffix[1:]):
        exponent = int(suffix[1:])
        if not -_INT64 <= exponent < _INT64:  # strconv.ParseInt(…, 64) fails
            return None
        # The server keeps int32(exponent): a longer one wraps around. Our patterns allow two digits.
        exponent = (exponent + 2**31) % 2**32 - 2**31
        scale = _CONTEXT.power(decimal.Decimal(10), exponent)
    else:
        return None
    value = _CONTEXT.multiply(decimal.Decimal(number), scale)
    if value != 0:
        value = value.quantize(_NANO, rounding=decimal.ROUND_UP, context=_CONTEXT)
    return Quantity(-value if sign == "-" else value)


def _compare(left: Quantity, right: Quantity) -> int:
    return (left.value > right.value) - (left.value < right.value)


def quantity_functions() -> dict[str, Any]:
    """The library's functions as cel-python takes them (member calls get the receiver first)."""
    from celpy import celtypes

    def quantity(text: Any) -> Quantity:
        parsed = parse_quantity(str(text)) if isinstance(text, str) else None
        if parsed is None:
            raise ValueError(f"quantities must match the regular expression: {text!r}")
        return parsed

    def arithmetic(op: Any) -> Any:
        def apply(left: Quantity, right: Any) -> Quantity:
            other = right.value if isinstance(right, Quantity) else decimal.Decimal(int(right))
            return Quantity(op(left.value, other))
        return apply

    return {
        "quantity": quantity,
        "isQuantity": lambda text: celtypes.BoolType(isinstance(text, str) and parse_quantity(str(text)) is not None),
        "sign": lambda q: celtypes.IntType((q.value > 0) - (q.value < 0)),
        "compareTo": lambda q, other: celtypes.IntType(_compare(q, other)),
        "isGreaterThan": lambda q, other: celtypes.BoolType(_compare(q, other) == 1),
        "isLessThan": lambda q, other: celtypes.BoolType(_compare(q, other) == -1),
        "isInteger": lambda q: celtypes.BoolType(q.value == q.value.to_integral_value() and -_INT64 <= q.value < _INT64),
        "asInteger": lambda q: celtypes.IntType(int(q.value)),
        "asApproximateFloat": lambda q: celtypes.DoubleType(float(q.value)),
        "add": arithmetic(lambda a, b: _CONTEXT.add(a, b)),
        "sub": arithmetic(lambda a, b: _CONTEXT.subtract(a, b)),
    }
