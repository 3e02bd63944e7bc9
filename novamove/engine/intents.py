"""Per-server intents: the `novamove:maintenance=<intent>` server tag (live, live-strict, cold, stop, skip).

Read by maintenance campaigns (engine/campaign/intents.py says what each intent means there)
and by rebalance (skip and stop never move; live and cold choose how).
"""

from __future__ import annotations

from typing import Iterable, Optional

from novamove.model import COLD, LIVE, Server

INTENT_KEY = "novamove:maintenance"
INTENTS = (LIVE, COLD, "stop", "skip", "live-strict")


def server_intent(server: Server) -> tuple[Optional[str], Optional[str]]:
    """(intent, None) from the server's `novamove:maintenance=...` tag, (None, None) without
    one, (None, problem) for a value novamove does not know (the server is then treated as
    untagged and the problem reported)."""
    for tag in server.tags or ():
        key, sep, value = tag.partition("=")
        if key.strip() == INTENT_KEY and sep:
            value = value.strip().lower()
            if value in INTENTS:
                # live-strict plans as live; only the stall policy (engine/stall.py) tells
                # them apart.
                return (LIVE if value == "live-strict" else value), None
            return None, (f"{server.name}: unknown {INTENT_KEY} value {value!r} "
                          f"(expected {', '.join(INTENTS)}); treated as untagged")
    return None, None


def intents_of(servers: Iterable[Server]) -> tuple[dict[str, str], list[str]]:
    """{server id: intent} of the tagged servers, and the problems with unknown values."""
    out: dict[str, str] = {}
    problems: list[str] = []
    for s in servers:
        intent, problem = server_intent(s)
        if intent:
            out[s.id] = intent
        if problem:
            problems.append(problem)
    return out, problems
