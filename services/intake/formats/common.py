"""What every format parser shares: the parsed command, the format error, timestamps and clipping."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ValidationError
from pydantic_core import PydanticCustomError


@dataclass(frozen=True)
class ParsedCommand:
    """One command a request asks for: its type, its validated payload and its dedup key."""

    type: str  # shared.events.TRIGGER / ACKNOWLEDGE / RESOLVE
    payload: BaseModel  # ev.Trigger / ev.Acknowledge / ev.Resolve, fully validated
    dedup_key: str


class FormatError(ValueError):
    """A rule of the format that pydantic cannot express; `field` is the dotted path in the request body."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _assume_utc(value: datetime) -> datetime:
    # ISO 8601 allows a local time without offset; monitoring tools that send one mean UTC in practice.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


Timestamp = Annotated[datetime, AfterValidator(_assume_utc)]
"""An ISO 8601 / RFC 3339 instant (fractions beyond microseconds dropped); naive ones are taken as UTC."""


def _unicode(value: str) -> str:
    # json.loads('"\\ud800"') gives a lone surrogate, which no JSON encoder downstream can write back.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError("string_unicode", "Input should be valid Unicode (no lone surrogates)") from None
    return value


Text = Annotated[str, AfterValidator(_unicode)]
"""A string that can be written as JSON again (pydantic checks this only for constrained strings)."""


def clip(text: str, limit: int) -> str:
    """Return `text` cut to at most `limit` characters, marking a cut with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build(model: type[BaseModel], fields: Mapping[str, Any], field_of: Callable[[str], str]) -> BaseModel:
    """Validate a command payload; a failure becomes a FormatError at the request field `field_of` names.

    The format models mirror the command's limits, so this is a safety net, not the rule.
    """
    try:
        return model.model_validate(dict(fields))
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"]]
        head = field_of(loc[0]) if loc else field_of("")
        raise FormatError(".".join(p for p in (head, *loc[1:]) if p) or "body", first["msg"]) from None
