"""Nova's request ids of the changes novamove makes, handed from the cloud adapter (which sees
the HTTP answers) to the journal (which records each change) without either importing the
other. Per thread: a drain follows many moves from worker threads.

Every OpenStack API answers with `x-openstack-request-id`; stored with the journaled change,
shown in failure messages and `-f json`, it lets an operator grep the cloud's logs.
"""

from __future__ import annotations

import threading
from typing import Optional

_local = threading.local()


def note(request_id: Optional[str]) -> None:
    """The adapter: the answer to a mutating call (POST/PUT/DELETE) carried this id."""
    if request_id:
        _local.last = request_id


def take() -> Optional[str]:
    """The journal: the id noted since the last take (None if no mutating call answered)."""
    rid = getattr(_local, "last", None)
    _local.last = None
    return rid
