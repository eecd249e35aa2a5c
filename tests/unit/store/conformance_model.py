"""Store conformance: random operations against a dict model (see conformance.py)."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest
from conformance import StoreFactory, doc, take
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gossamer.store import AlreadyExists, Conflict, NotFound, Op, Record, Store

# ---- property: the store behaves like a dict with revisions ---------------------------------

KEYS = [(k, ns, n) for k in ("Service", "HTTPRoute") for ns in ("a", "b") for n in ("x", "y")]
STALE = 10_000  # a revision no example reaches
key_st = st.sampled_from(KEYS)
value_st = st.builds(
    lambda n, tier: doc("v", {"tier": tier}, n=n), st.integers(0, 3), st.sampled_from("pq")
)
expect_st = st.sampled_from([None, "current", "stale"])
single_st = st.one_of(
    st.tuples(st.just("create"), key_st, value_st, st.none()),
    st.tuples(st.just("update"), key_st, value_st, expect_st),
    st.tuples(st.just("delete"), key_st, st.none(), expect_st),
)
txn_op_st = st.one_of(
    st.tuples(st.just("put"), key_st, value_st, st.sampled_from([None, 0, "current", "stale"])),
    st.tuples(st.just("delete"), key_st, st.none(), expect_st),
)
step_st = st.one_of(
    single_st,
    st.tuples(
        st.just("txn"), st.lists(txn_op_st, min_size=1, max_size=4, unique_by=lambda o: o[1])
    ),
)

Model = dict[tuple[str, str, str], tuple[dict[str, Any], int, int]]


def resolve(expect: Any, key: tuple[str, str, str], model: Model) -> int | None:
    if expect == "current":
        return model[key][2] if key in model else 1
    return STALE if expect == "stale" else expect


def plan(step: Any, model: Model) -> tuple[list[Op], type[Exception] | None]:
    """The ops a step writes, and the error the contract says it meets (None: success)."""
    if step[0] == "txn":
        ops = [Op(a, *k, v, resolve(e, k, model)) for a, k, v, e in step[1]]
    else:
        action, key, value, expect = step
        expected = 0 if action == "create" else resolve(expect, key, model)
        ops = [Op("delete" if action == "delete" else "put", *key, value, expected)]
    must_exist = step[0] == "update"
    for op in ops:
        key = (op.kind, op.namespace, op.name)
        expected = op.expected_revision
        if key not in model:
            if op.action == "delete" or must_exist or expected:
                return ops, NotFound
        elif op.action == "put" and expected == 0:
            return ops, AlreadyExists
        elif expected is not None and expected != model[key][2]:
            return ops, Conflict
    return ops, None


def perform(store: Store, action: str, ops: list[Op]) -> Awaitable[Record | list[Record]]:
    op = ops[0]
    if action == "create":
        return store.create(op.kind, op.namespace, op.name, op.value or {})
    if action == "update":
        return store.update(op.kind, op.namespace, op.name, op.value or {}, op.expected_revision)
    if action == "delete":
        return store.delete(op.kind, op.namespace, op.name, op.expected_revision)
    return store.txn(ops)


async def run_steps(store: Store, steps: list[Any]) -> tuple[Model, int, int]:
    """Apply steps to the store and to a dict model, checking each outcome."""
    model: Model = {}
    revision = events = 0
    for step in steps:
        ops, error = plan(step, model)
        if error is not None:
            with pytest.raises(error):
                await perform(store, step[0], ops)
            continue
        result = await perform(store, step[0], ops)
        revision += 1
        events += len(ops)
        for op in ops:
            key = (op.kind, op.namespace, op.name)
            if op.action == "delete":
                del model[key]
            else:
                create = model[key][1] if key in model else revision
                model[key] = (op.value or {}, create, revision)
        records = result if isinstance(result, list) else [result]
        assert [r.mod_revision for r in records] == [revision] * len(ops)
    return model, revision, events


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(step_st, max_size=15))
def test_random_ops_match_a_dict_model_and_watch_replays_to_it(
    store_factory: StoreFactory, steps: list[Any]
) -> None:
    async def scenario(location: Path) -> None:
        store = store_factory(location)
        try:
            model, revision, events = await run_steps(store, steps)
            assert await store.revision() == revision
            state: Model = {}
            for kind in ("Service", "HTTPRoute"):
                records, read_at = await store.list(kind)
                assert read_at == revision
                state.update({r.key: (r.value, r.create_revision, r.mod_revision) for r in records})
                tier_p, _ = await store.list(kind, selector={"tier": "p"})
                assert {r.key for r in tier_p} == {
                    k
                    for k, v in model.items()
                    if k[0] == kind and v[0]["metadata"]["labels"]["tier"] == "p"
                }
            assert state == model
            replayed: Model = {}
            for event in await take(store, 0, events) if events else []:
                r = event.record
                if event.type == "PUT":
                    replayed[r.key] = (r.value, r.create_revision, r.mod_revision)
                else:
                    del replayed[r.key]
            assert replayed == model
        finally:
            await store.close()

    with tempfile.TemporaryDirectory() as location:
        asyncio.run(scenario(Path(location)))
