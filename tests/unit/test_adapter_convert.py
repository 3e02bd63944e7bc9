"""Nova migration records -> model.Migration: compute (service) hosts and hypervisor nodes."""

from __future__ import annotations

from novamove.cloud import convert


def test_a_migration_record_keeps_its_nodes():
    body = {"id": 7, "uuid": "u7", "instance_uuid": "s1", "status": "completed", "migration_type": "migration",
            "source_compute": "compute1", "dest_compute": "compute2", "dest_host": "192.0.2.2",
            "source_node": "compute1.fake.local", "dest_node": "compute2.fake.local"}
    m = convert.migration_from_api(body)
    assert (m.source_host, m.dest_host) == ("compute1", "compute2")
    assert (m.source_node, m.dest_node) == ("compute1.fake.local", "compute2.fake.local")


def test_a_record_without_nodes_has_none():
    m = convert.migration_from_api({"id": 8, "server_uuid": "s1", "status": "queued", "dest_node": ""}, "s1")
    assert m.source_node is None and m.dest_node is None and m.server_id == "s1"
