"""Hypothesis strategies for policies and command sequences."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import strategies as st

from services.escalator.core.policy import Catalog, Level, Policy, Service
from shared.events import Target


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    """Policies of 1-4 levels with delays 0-3600 s, optional repeat, round robin, ack timeout and flap window."""
    n = draw(st.integers(1, 4))
    levels = []
    for i in range(n):
        targets = tuple(
            Target(type="webhook", name=f"l{i + 1}t{j}", url=f"http://127.0.0.1:9/l{i + 1}/{j}")
            for j in range(draw(st.integers(1, 3)))
        )
        levels.append(
            Level(
                name=f"level-{i + 1}",
                delay=timedelta(seconds=draw(st.integers(0, 3600))),
                round_robin=draw(st.booleans()),
                targets=targets,
            )
        )
    repeat = draw(st.sampled_from([0, 0, 1, 2]))
    ack_timeout = draw(st.sampled_from([None, timedelta(minutes=10), timedelta(hours=1)]))
    return Policy(
        id="p",
        levels=tuple(levels),
        repeat=repeat,
        repeat_delay=timedelta(seconds=draw(st.integers(1, 3600))) if repeat else None,
        ack_timeout=ack_timeout,
        flap_window=draw(st.sampled_from([None, timedelta(minutes=5), timedelta(hours=1)])),
    )


def catalog_of(policy: Policy) -> Catalog:
    """A catalog with one service `svc` on `policy`."""
    return Catalog(services={"svc": Service(id="svc", escalation_policy=policy.id)}, policies={policy.id: policy})


ACTIONS = ("trigger", "acknowledge", "resolve", "escalate", "snooze", "wait", "wait", "wait")

commands = st.lists(
    st.tuples(st.sampled_from(ACTIONS), st.integers(0, 7200), st.sampled_from(["a", "b"])), min_size=1, max_size=25
)
