"""Request ids: the adapter keeps Nova's x-openstack-request-id of every mutating request (per
thread), and a failed mutating call's error carries it."""

from __future__ import annotations

import json
import threading

import pytest
from keystoneauth1 import exceptions as ksa

from novamove import errors
from novamove.cloud.adapter import Cloud
from novamove.model import Service


class Response:
    def __init__(self, status, body, request_id):
        self.status_code = status
        self._body = body
        self.content = json.dumps(body).encode() if body is not None else b""
        self.text = self.content.decode()
        self.headers = {"x-openstack-request-id": request_id} if request_id else {}

    def json(self):
        return self._body


class Session:
    """A keystoneauth-like session: answers by (method, path) from `answers`; numbers ids."""

    def __init__(self, answers):
        self.answers = answers
        self.n = 0
        self.lock = threading.Lock()

    def request(self, url, method, **kwargs):
        with self.lock:
            self.n += 1
            rid = f"req-{self.n:04d}"
        answer = self.answers.get((method, url), (200, {}))
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        return Response(status, body, rid)


class Proxy:
    def __init__(self, conn):
        self.conn = conn

    def request(self, url, method, **kwargs):
        return self.conn.session.request(url, method, **kwargs)

    def get_endpoint_data(self):
        return type("E", (), {"max_microversion": "2.95", "min_microversion": "2.1"})()


class Conn:
    def __init__(self, answers):
        self.session = Session(answers)
        self.compute = Proxy(self)
        self.placement = Proxy(self)


SERVICE = Service(id="6f0c5c1e-0000-4000-8000-000000000001", host="c1", binary="nova-compute", zone="nova",
                  status="enabled", state="up", disabled_reason=None, forced_down=False, updated_at=None)


def test_a_mutating_request_leaves_its_id_and_a_read_does_not():
    conn = Conn({("PUT", f"/os-services/{SERVICE.id}"): (200, {"service": {"id": SERVICE.id, "host": "c1",
                                                                            "status": "disabled"}})})
    cloud = Cloud(conn)
    assert cloud.last_request_id is None
    mark = cloud.request_mark()
    cloud._compute("POST", "/servers/s1/action", json={"os-stop": None})
    first = cloud.last_request_id
    assert first and first.startswith("req-")
    cloud._compute("GET", "/os-services")
    assert cloud.last_request_id == first                 # a GET changes nothing
    cloud._compute("PUT", f"/os-services/{SERVICE.id}", json={"status": "disabled"})
    assert cloud.request_ids_since(mark) == [first, cloud.last_request_id]
    assert cloud.request_ids_since(cloud.request_mark()) == []


def test_a_failed_mutating_call_carries_its_request_id():
    conn = Conn({("POST", "/servers/s1/action"): (409, {"conflictingRequest": {"message": "Cannot 'migrate'"}})})
    cloud = Cloud(conn)
    with pytest.raises(errors.PreconditionFailed) as info:
        cloud._compute("POST", "/servers/s1/action", json={"migrate": None}, what="cold migration")
    assert info.value.request_id and info.value.request_id == cloud.last_request_id
    assert str(info.value).endswith(f" (request ID {info.value.request_id})")
    assert "\n" not in str(info.value)


def test_a_failed_read_has_no_request_id():
    cloud = Cloud(Conn({("GET", "/servers/nope"): (404, {"itemNotFound": {"message": "not found"}})}))
    with pytest.raises(errors.NotFound) as info:
        cloud._compute("GET", "/servers/nope")
    assert info.value.request_id is None and "request ID" not in str(info.value)


def test_keystoneauth_http_errors_and_lost_connections():
    conn = Conn({("DELETE", "/servers/s1/migrations/7"): ksa.HttpError(http_status=500, request_id="req-ksa",
                                                                        message="boom"),
                 ("POST", "/servers/s2/action"): ksa.ConnectTimeout("timed out")})
    cloud = Cloud(conn)
    with pytest.raises(errors.NovamoveError) as info:
        cloud._compute("DELETE", "/servers/s1/migrations/7", what="abort migration")
    assert info.value.request_id == "req-ksa" and errors.is_ambiguous(info.value)
    with pytest.raises(errors.Unreachable) as info:
        cloud._compute("POST", "/servers/s2/action", json={"os-start": None})
    # No answer, no id: and the last id is not a stale one from an earlier request.
    assert info.value.request_id is None and cloud.last_request_id is None


def test_ids_are_per_thread():
    cloud = Cloud(Conn({}))
    seen = {}
    mark = cloud.request_mark()

    def work(name):
        cloud._compute("POST", f"/servers/{name}/action", json={"os-stop": None})
        seen[name] = (cloud.last_request_id, cloud.request_ids_since(mark))

    threads = [threading.Thread(target=work, args=(f"s{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cloud.last_request_id is None                  # this thread made none
    assert len({rid for rid, _ in seen.values()}) == 4
    assert all(ids == [rid] for rid, ids in seen.values())
    assert len(cloud.request_ids_since(mark, this_thread=False)) == 4


def test_the_error_constructor_appends_the_id():
    exc = errors.NovamoveError("migrate: HTTP 500", request_id="req-1")
    assert str(exc) == "migrate: HTTP 500 (request ID req-1)" and exc.request_id == "req-1"
    assert errors.NotFound("x").request_id is None
