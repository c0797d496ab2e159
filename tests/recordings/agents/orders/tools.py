"""The `orders` fixture agent's tool: a fixed answer, so replays are deterministic."""

from __future__ import annotations

from typing import Any

ORDERS = {"A1001": {"status": "shipped", "eta": "2025-06-03", "items": ["rain jacket"]}}


def lookup_order(order_id: str) -> dict[str, Any]:
    order = ORDERS.get(order_id.strip().upper())
    if order is None:
        return {"found": False, "order_id": order_id}
    return {"found": True, "order_id": order_id, **order}
