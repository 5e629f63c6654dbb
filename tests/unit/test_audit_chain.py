"""The hash chain: any change to any hashed field of any row is found, at that row; order matters."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from services.audit.chain import GENESIS, HASHED_FIELDS, ChainChecker, canonical, row_hash


def _chain(n: int, chain: str = "incidents.commands/0") -> list[dict[str, Any]]:
    rows, prev = [], GENESIS
    for i in range(1, n + 1):
        row: dict[str, Any] = {name: None for name in HASHED_FIELDS}
        row.update(
            chain=chain,
            chain_seq=i,
            prev_hash=prev,
            event_id=f"00000000-0000-7000-8000-{i:012d}",
            type="incident.trigger",
            schema_version=1,
            occurred_at=f"2026-11-27T09:00:{i % 60:02d}.000000Z",
            kafka_offset=i - 1,
            teams=["infrastructure"],
            payload={"summary": f"disk {i}", "load": 0.93, "nested": {"b": [1, 2], "a": "ü"}},
        )
        row["hash"] = prev = row_hash(row)
        rows.append(row)
    return rows


def _check(rows: list[dict[str, Any]]) -> ChainChecker:
    checker = ChainChecker()
    checker.feed_all(rows)
    return checker


def test_canonical_json_ignores_key_order_and_keeps_unicode() -> None:
    assert canonical({"b": 1, "a": {"d": "ü", "c": 0.5}}) == canonical({"a": {"c": 0.5, "d": "ü"}, "b": 1})
    assert canonical({"a": "ü"}) == '{"a":"ü"}'.encode()


def test_an_intact_chain_has_no_problem() -> None:
    checker = _check(_chain(20))
    assert checker.problems == {}
    assert checker.rows == 20
    assert checker.chains["incidents.commands/0"].seq == 20


@given(
    n=st.integers(min_value=1, max_value=12),
    data=st.data(),
    field=st.sampled_from([f for f in HASHED_FIELDS if f not in ("chain",)]),
)
def test_changing_any_field_of_any_row_is_found_at_that_row(n: int, data: st.DataObject, field: str) -> None:
    rows = _chain(n)
    victim = data.draw(st.integers(min_value=0, max_value=n - 1))
    tampered = copy.deepcopy(rows)
    value = tampered[victim][field]
    tampered[victim][field] = (
        value + 1 if isinstance(value, int) else {"x": 1} if isinstance(value, dict) else f"{value}!"
    )
    problem = _check(tampered).problems["incidents.commands/0"]
    assert problem.chain_seq == tampered[victim]["chain_seq"]


@given(n=st.integers(min_value=2, max_value=12), data=st.data())
def test_removing_or_swapping_rows_is_found(n: int, data: st.DataObject) -> None:
    rows = _chain(n)
    i = data.draw(st.integers(min_value=0, max_value=n - 2))
    removed = rows[:i] + rows[i + 1 :]
    assert _check(removed).problems["incidents.commands/0"].chain_seq == rows[i + 1]["chain_seq"]
    swapped = list(rows)
    swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    assert _check(swapped).problems["incidents.commands/0"].chain_seq == rows[i + 1]["chain_seq"]


def test_chains_are_checked_independently() -> None:
    a, b = _chain(5, "t/0"), _chain(5, "t/1")
    b[2]["payload"] = {"summary": "edited"}
    checker = _check([*a, *b])
    assert list(checker.problems) == ["t/1"]
    assert checker.problems["t/1"].chain_seq == 3
    assert checker.chains["t/0"].seq == 5
