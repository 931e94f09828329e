"""Plain JSON values from trustwall's typed results.

One conversion for every consumer of a result: the CLI's ``--json``, the Ansible modules and
library users who serialise what an API returned.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
from pathlib import Path
from typing import Any


def to_jsonable(value: Any) -> Any:
    """Turn dataclasses, enums, paths, dates and bytes into plain JSON values."""
    if hasattr(value, "to_json") and callable(value.to_json):
        return to_jsonable(value.to_json())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.name.startswith("_")}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value
