"""How the HTTP channels write their JSON bodies."""

from __future__ import annotations

import json
from typing import Any


def dumps(value: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON bytes."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
