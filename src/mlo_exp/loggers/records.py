"""Turning a logged record into what dashboards take; shared by the W&B process and the
TensorBoard logger, and light on purpose (the W&B process imports it without torch)."""

from __future__ import annotations

from typing import Any


def scalars(record: dict[str, Any]) -> dict[str, float | int]:
    """The numeric values of a record (bools as 0/1; ``None`` and strings left out)."""
    data: dict[str, float | int] = {}
    for key, value in record.items():
        if isinstance(value, bool):
            data[key] = int(value)
        elif isinstance(value, (int, float)):
            data[key] = value
    return data
