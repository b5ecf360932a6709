"""The base model and the bounded scalar types every API field is built from.

Pydantic models are the only schema of this project: the CRDs are generated from them
(`agent_sessions.api.crd`). So the things the API server needs to know — bounds, patterns,
int-or-string, list semantics, CEL rules — are declared here, next to the fields, and carried
into the CRD through `json_schema_extra`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

#: Marker put on a model's schema: its optional fields become `nullable: true` in the CRD, so an
#: explicit `null` survives the API server and can remove an inherited value.
NULLABLE_OPTIONALS = "x-agentsession-nullable-optionals"


class APIModel(BaseModel):
    """Base of every API object: camelCase on the wire, field docstrings as descriptions."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        use_attribute_docstrings=True,
        extra="forbid",
        frozen=False,
    )


class OverridableModel(APIModel):
    """A block of configuration that templates and sessions layer over each other.

    Its optional fields are nullable in the CRD: `null` means "remove what a lower layer set".
    """

    model_config = ConfigDict(json_schema_extra={NULLABLE_OPTIONALS: True})


def cel(rule: str, message: str, field_path: str | None = None, reason: str | None = None) -> dict[str, Any]:
    """One `x-kubernetes-validations` entry (core CEL only: runs on every supported API server)."""
    entry: dict[str, Any] = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    return entry


def validations(*rules: dict[str, Any], nullable_optionals: bool = False) -> ConfigDict:
    """Model config carrying CEL rules into the generated CRD."""
    extra: dict[str, Any] = {"x-kubernetes-validations": list(rules)}
    if nullable_optionals:
        extra[NULLABLE_OPTIONALS] = True
    return ConfigDict(json_schema_extra=extra)


# Patterns (anchored: the API server's regexp match is unanchored).
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A duration as Go's `time.Duration.String()` writes it: each unit at most once, largest first,
# with few enough digits that no value can overflow a 64-bit count of nanoseconds (what Go's
# `time.ParseDuration`, and so CEL's `duration()`, can hold). `[.]` rather than `\.`: the same
# text is a CEL string literal in `DURATION_RULE`.
DURATION_PATTERN = (
    r"^([0-9]{1,5}([.][0-9]{1,9})?h)?([0-9]{1,7}([.][0-9]{1,9})?m)?([0-9]{1,9}([.][0-9]{1,9})?s)?"
    r"([0-9]{1,9}([.][0-9]{1,9})?ms)?([0-9]{1,9}([.][0-9]{1,9})?(us|µs))?([0-9]{1,9}([.][0-9]{1,9})?ns)?$"
)
MAX_DURATION = "8760h"
"""The longest duration any field accepts (365 days): the API server refuses longer ones, and so
does the operator (`config.durations.parse_duration`) for values that never went through it."""
MAX_DURATION_SECONDS = 8760 * 3600
# `resource.Quantity`'s syntax, with an exponent of at most two digits: the API server parses a
# longer one into an int32 (so `1e4294967296` would read as 1) or not at all.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?[0-9]{1,2}))?$"
)
NONNEGATIVE_QUANTITY_PATTERN = (
    r"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?[0-9]{1,2}))?$"
)
MAX_QUANTITY = "1Ei"
"""The largest quantity any field accepts (2^60: more than any node has of anything)."""
LABEL_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
FIELD_PATH_PATTERN = r"^[a-z][A-Za-z0-9]*(\.[a-z][A-Za-z0-9]*)*$"

ResourceName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
"""Name of a namespaced object (DNS-1123 subdomain)."""

LabelValue = Annotated[str, Field(max_length=63, pattern=r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")]
ShortText = Annotated[str, Field(max_length=256)]
LongText = Annotated[str, Field(max_length=4096)]
DURATION_RULE = cel(
    # `duration()` only sees values of the pattern (nothing else can overflow it); CEL's parser
    # spells the micro sign `us`.
    f"size(self) == 0 || !self.matches('{DURATION_PATTERN}')"
    f" || duration(self.replace('µs', 'us')) <= duration('{MAX_DURATION}')",
    f"must be at most {MAX_DURATION} (365 days)",
)
Duration = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=DURATION_PATTERN,
          json_schema_extra={"x-kubernetes-validations": [DURATION_RULE]}),
]
"""A Go-style duration such as `30m`, `1h30m` or `90s`, at most `8760h`; never negative."""

# `string(self)`: an int-or-string is `dyn` in CEL, and `quantity()` takes a string. Each rule is
# guarded by `isQuantity` so that a malformed value gets the pattern's error alone.
QUANTITY_RULES = [
    cel("!isQuantity(string(self)) || quantity(string(self)).compareTo(quantity('0')) >= 0", "must not be negative"),
    cel(f"!isQuantity(string(self)) || quantity(string(self)).compareTo(quantity('{MAX_QUANTITY}')) <= 0",
        f"must be at most {MAX_QUANTITY}"),
]
Quantity = Annotated[
    int | str,
    Field(json_schema_extra={"x-kubernetes-int-or-string": True, "pattern": QUANTITY_PATTERN, "maxLength": 64,
                             "x-kubernetes-validations": QUANTITY_RULES}),
]
"""A Kubernetes resource quantity (`500m`, `1Gi`, `2`): never negative, at most `1Ei`."""

StringMap = Annotated[dict[Annotated[str, Field(max_length=317)], Annotated[str, Field(max_length=4096)]], Field(max_length=64)]


def list_map(*keys: str) -> dict[str, Any]:
    """`json_schema_extra` for a list merged by key (server-side apply and our precedence rules)."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


LIST_SET: dict[str, Any] = {"x-kubernetes-list-type": "set"}
LIST_ATOMIC: dict[str, Any] = {"x-kubernetes-list-type": "atomic"}
PRESERVE_UNKNOWN: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}
