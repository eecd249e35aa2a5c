"""Lease decisions in virtual time: no sockets, no sleeps."""

from gossamer.control.leases import Expire, LeaseTable, SetHealth

KEY = ("default", "reviews-1a2b")


def test_renewed_lease_stays_healthy_and_writes_nothing() -> None:
    table = LeaseTable()
    table.grant(KEY, 10.0, now=0.0)
    for t in range(3, 60, 3):
        assert table.renew(KEY, float(t), healthy=True) is None
        assert table.due(float(t)) == []
    assert KEY in table


def test_missed_renewals_turn_unhealthy_after_one_lease_then_expire_after_three() -> None:
    table = LeaseTable()
    table.grant(KEY, 10.0, now=0.0)
    assert table.next_deadline() == 10.0
    assert table.due(9.99) == []
    assert table.due(10.0) == [SetHealth(KEY, "unhealthy")]
    assert table.due(15.0) == []  # already written: no repeat
    assert table.next_deadline() == 30.0
    assert table.due(29.9) == []
    assert table.due(30.0) == [Expire(KEY)]
    assert KEY not in table
    assert table.next_deadline() is None


def test_heartbeat_after_unhealthy_makes_it_healthy_again() -> None:
    table = LeaseTable()
    table.grant(KEY, 10.0, now=0.0)
    assert table.due(12.0) == [SetHealth(KEY, "unhealthy")]
    assert table.renew(KEY, 13.0, healthy=True) == SetHealth(KEY, "healthy")
    assert table.due(22.9) == []
    assert table.due(23.0) == [SetHealth(KEY, "unhealthy")]


def test_probe_failure_reported_in_heartbeat_marks_unhealthy_at_once() -> None:
    table = LeaseTable()
    table.grant(KEY, 10.0, now=0.0)
    assert table.renew(KEY, 1.0, healthy=False) == SetHealth(KEY, "unhealthy")
    assert table.renew(KEY, 2.0, healthy=False) is None
    assert table.due(11.0) == []  # lease renewed, just unhealthy
    assert table.renew(KEY, 3.0, healthy=True) == SetHealth(KEY, "healthy")


def test_release_drops_the_lease_and_its_deadlines() -> None:
    table = LeaseTable()
    table.grant(KEY, 10.0, now=0.0)
    assert table.release(KEY)
    assert not table.release(KEY)
    assert table.due(100.0) == []
    assert table.next_deadline() is None


def test_restored_unhealthy_instance_keeps_its_written_health() -> None:
    table = LeaseTable()
    table.grant(KEY, 10.0, now=0.0, health="unhealthy")
    # The lease is fresh, so the instance is wanted healthy: the next due() says so.
    assert table.due(0.0) == []
    assert table.renew(KEY, 1.0, healthy=True) == SetHealth(KEY, "healthy")


def test_heap_does_not_grow_with_heartbeats() -> None:
    table = LeaseTable()
    table.grant(KEY, 10.0, now=0.0)
    for t in range(1, 10_000):
        table.renew(KEY, t * 3.0, healthy=True)
        table.due(t * 3.0)
    assert len(table._deadlines) < 10


def test_many_instances_expire_independently() -> None:
    table = LeaseTable()
    keys = [("default", f"svc-{i}") for i in range(100)]
    for i, key in enumerate(keys):
        table.grant(key, 1.0 + i % 5, now=0.0)
    actions = table.due(2.0)
    assert {a.key for a in actions} == {k for i, k in enumerate(keys) if 1.0 + i % 5 <= 2.0}
    assert all(isinstance(a, SetHealth) for a in actions)
