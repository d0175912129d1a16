"""A branching (switchNode) variant of the default policy: the pricing table forks by product and age, and a
policy whose switch has no default statement (rows it does not route produce no output)."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from microlend.decisioning.policy import default_policy


def _priced(node: dict[str, Any], node_id: str, add: str) -> dict[str, Any]:
    copied = copy.deepcopy(node)
    copied["id"] = node_id
    copied["name"] = f"Pricing {node_id}"
    for rule in copied["content"]["rules"]:
        if rule["r_rate"] != "null":
            rule["r_rate"] = str(Decimal(rule["r_rate"]) + Decimal(add))
    return copied


def branching_policy(default_statement: bool = True) -> dict[str, Any]:
    """Pricing through a switch: MICRO_BIZ one table, applicants of 60 or more another, everyone else the
    default's (without `default_statement`, everyone else is routed nowhere)."""
    doc = default_policy()
    doc["metadata"] = {**doc.get("metadata", {}), "name": "Branching pricing"}
    pricing = next(n for n in doc["nodes"] if n["id"] == "pricing")
    statements = [
        {"id": "biz", "condition": 'application.product_code == "MICRO_BIZ"'},
        {"id": "senior", "condition": "customer.age >= 60"},
    ]
    if default_statement:
        statements.append({"id": "other", "condition": ""})
    doc["nodes"] += [
        {"id": "route", "type": "switchNode", "name": "Route", "position": {"x": 0, "y": 0},
         "content": {"hitPolicy": "first", "statements": statements}},
        _priced(pricing, "pricing_biz", "0.0100"),
        _priced(pricing, "pricing_senior", "0.0200"),
    ]
    edges = [e for e in doc["edges"] if e["targetId"] != "pricing" and e["sourceId"] != "pricing"]
    edges += [
        {"id": "s0", "type": "edge", "sourceId": "knockout", "targetId": "route"},
        {"id": "s1", "type": "edge", "sourceId": "route", "sourceHandle": "biz", "targetId": "pricing_biz"},
        {"id": "s2", "type": "edge", "sourceId": "route", "sourceHandle": "senior", "targetId": "pricing_senior"},
        {"id": "s4", "type": "edge", "sourceId": "pricing_biz", "targetId": "refer"},
        {"id": "s5", "type": "edge", "sourceId": "pricing_senior", "targetId": "refer"},
    ]
    if default_statement:
        edges += [
            {"id": "s3", "type": "edge", "sourceId": "route", "sourceHandle": "other", "targetId": "pricing"},
            {"id": "s6", "type": "edge", "sourceId": "pricing", "targetId": "refer"},
        ]
    else:
        doc["nodes"] = [n for n in doc["nodes"] if n["id"] != "pricing"]
    doc["edges"] = edges
    doc.pop("tests", None)
    return doc
