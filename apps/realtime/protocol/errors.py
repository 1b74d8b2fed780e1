"""OpenAI-shaped protocol errors, and the mapping from pydantic validation errors to them.

The same ``ProtocolError`` becomes a 400 JSON body on HTTP and an ``error`` event on a
realtime connection, so both transports describe bad input identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .session_config import UNION_TAGS

_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a decimal",
    "bool_type": "a boolean",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "an array",
    "none_required": "null",
}
# Numeric bound errors: pydantic kind -> (ctx key, operator, (side, extreme)).
_BOUNDS = {
    "greater_than_equal": ("ge", ">=", ("below", "minimum")),
    "greater_than": ("gt", ">", ("below", "minimum")),
    "less_than_equal": ("le", "<=", ("above", "maximum")),
    "less_than": ("lt", "<", ("above", "maximum")),
}
# Length errors: pydantic kind -> (what, side, ctx key).
_LENGTHS = {
    "string_too_long": ("String", "above", "max_length"),
    "too_long": ("Array", "above", "max_length"),
    "string_too_short": ("String", "below", "min_length"),
    "too_short": ("Array", "below", "min_length"),
}


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """One client mistake, described the way the OpenAI API describes it."""

    message: str
    param: str | None = None
    code: str | None = None
    type: str = "invalid_request_error"

    def as_dict(self) -> dict[str, Any]:
        """The ``error`` object of an OpenAI error body."""
        return {"message": self.message, "type": self.type, "param": self.param, "code": self.code}


def _json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def param_path(loc: tuple[int | str, ...], *, prefix: str | None = None) -> str | None:
    """Render a pydantic error location as OpenAI does: ``session.tools[0].name``."""
    parts: list[str] = [prefix] if prefix else []
    for piece in loc:
        if isinstance(piece, int):
            if parts:
                parts[-1] += f"[{piece}]"
            else:
                parts.append(f"[{piece}]")
        elif piece in UNION_TAGS or piece.startswith("function-"):
            # Discriminated unions insert their tag into the location; users never typed it.
            continue
        else:
            parts.append(piece)
    return ".".join(parts) or None


def protocol_error_from_validation(
    exc: ValidationError, *, prefix: str | None = None
) -> ProtocolError:
    """Describe the first problem in a validation error, naming the offending field."""
    err = exc.errors(include_url=False)[0]
    kind = err["type"]
    loc = tuple(err.get("loc", ()))
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if isinstance(ctx.get("field"), str):
        # Cross-field checks run on the whole object; they say which field they are about.
        loc = (*loc, ctx["field"])
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        loc = (*loc, ctx.get("discriminator", "'type'").strip("'"))
    param = param_path(loc, prefix=prefix)
    if kind == "extra_forbidden":
        return ProtocolError(f"Unknown parameter: '{param}'.", param, "unknown_parameter")
    if kind in ("missing", "union_tag_not_found", "missing_required_parameter"):
        return ProtocolError(
            f"Missing required parameter: '{param}'.", param, "missing_required_parameter"
        )
    if kind == "union_tag_invalid":
        expected = ctx.get("expected_tags", "")
        return ProtocolError(
            f"Invalid value: '{ctx.get('tag')}'. Supported values are: {expected}.",
            param,
            "invalid_value",
        )
    if kind in ("literal_error", "enum"):
        return ProtocolError(
            f"Invalid value: {value!r}. Supported values are: {ctx.get('expected')}.",
            param,
            "invalid_value",
        )
    if kind in _TYPE_NAMES:
        return ProtocolError(
            f"Invalid type for '{param}': expected {_TYPE_NAMES[kind]}, "
            f"but got {_json_type_name(value)} instead.",
            param,
            "invalid_type",
        )
    if kind in _BOUNDS:
        key, op, side = _BOUNDS[kind]
        bound = ctx.get(key)
        # The field's kind decides the wording: a float limit is a "Decimal" even for input 3.
        number = "Decimal" if isinstance(bound, float) else "Integer"
        return ProtocolError(
            f"{number} {side[0]} {side[1]} value. Expected a value {op} {bound}, "
            f"but got {value} instead.",
            param,
            f"{number.lower()}_{side[0]}_{side[1][:3]}_value",
        )
    if kind in _LENGTHS:
        what, side, key = _LENGTHS[kind]
        extreme = "maximum" if side == "above" else "minimum"
        return ProtocolError(
            f"{what} too {'long' if side == 'above' else 'short'} for '{param}'. "
            f"Expected a {extreme} length of {ctx.get(key)}.",
            param,
            f"{what.lower()}_{side}_{extreme[:3]}_length",
        )
    if kind in ("invalid_value", "invalid_type"):
        # Our own PydanticCustomError messages are already phrased for the client.
        return ProtocolError(err["msg"], param, kind)
    return ProtocolError(f"Invalid value for '{param}': {err['msg']}.", param, "invalid_value")
