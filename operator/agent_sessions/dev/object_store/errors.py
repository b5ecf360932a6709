"""Failures as the API server reports them: a ``Status`` object with an HTTP code, and the
constructors for the ones the store answers with (404, 409, 410, 422, 400)."""

from __future__ import annotations

from agent_sessions.dev.admission import FieldError
from agent_sessions.dev.resources import ResourceType

CAUSE_REASONS = {
    "Invalid value": "FieldValueInvalid", "Required value": "FieldValueRequired",
    "Unsupported value": "FieldValueNotSupported", "Too long": "FieldValueTooLong",
    "Too many": "FieldValueTooMany", "Duplicate value": "FieldValueDuplicate",
    "Forbidden": "FieldValueForbidden", "Unknown field": "FieldValueTypeInvalid",
    "Invalid type": "FieldValueTypeInvalid",
}


class ApiError(Exception):
    """A failure the API server reports as a ``Status`` object with an HTTP code."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict:
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            status["details"] = self.details
        return status


def details_for(rtype: ResourceType, name: str, kind: str | None = None) -> dict:
    details = {"name": name, "kind": kind or rtype.plural}
    if rtype.group:
        details["group"] = rtype.group
    return details


def not_found(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rtype.qualified_plural} "{name}" not found',
                    details_for(rtype, name))


def already_exists(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{rtype.qualified_plural} "{name}" already exists',
                    details_for(rtype, name))


def conflict(rtype: ResourceType, name: str, why: str | None = None) -> ApiError:
    why = why or ("the object has been modified; please apply your changes to the latest "
                  "version and try again")
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on '
                                     f'{rtype.qualified_plural} "{name}": {why}',
                    details_for(rtype, name))


def invalid(rtype: ResourceType, name: str, errors: list[FieldError]) -> ApiError:
    shown = [str(error) for error in errors]
    summary = shown[0] if len(shown) == 1 else f"[{', '.join(shown)}]"
    details = details_for(rtype, name, kind=rtype.kind)
    details["causes"] = [{"reason": CAUSE_REASONS.get(error.type, "FieldValueInvalid"),
                          "message": error.message, "field": error.path or "<nil>"} for error in errors]
    return ApiError(422, "Invalid", f'{rtype.qualified_kind} "{name}" is invalid: {summary}',
                    details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def expired(requested: int, oldest: int) -> ApiError:
    return ApiError(410, "Expired", f"too old resource version: {requested} ({oldest})")
