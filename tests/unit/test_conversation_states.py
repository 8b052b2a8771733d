"""The conversation state machine: every (from, to) pair, allowed or not."""

from __future__ import annotations

import itertools

import pytest

from statemgr.domain.conversations import TRANSITIONS, State, can_move, check_move
from statemgr.domain.errors import FailedPrecondition

A, W, E, C = State.ACTIVE, State.WAITING, State.ERROR, State.CLOSED

# DESIGN.md: active <-> waiting; active|waiting|error -> closed; active|waiting -> error; error -> active.
ALLOWED = {(A, W), (W, A), (A, C), (W, C), (E, C), (A, E), (W, E), (E, A)}
ALL_PAIRS = list(itertools.product(State, State))


def test_the_table_is_exactly_the_design() -> None:
    assert {(source, target) for source, targets in TRANSITIONS.items() for target in targets} == ALLOWED
    assert len(ALL_PAIRS) == 16 and len(ALLOWED) == 8


@pytest.mark.parametrize(("source", "target"), sorted(ALLOWED))
def test_allowed_moves(source: State, target: State) -> None:
    assert can_move(source, target)
    check_move(source, target)


@pytest.mark.parametrize(("source", "target"), sorted(set(ALL_PAIRS) - ALLOWED))
def test_forbidden_moves_are_failed_precondition(source: State, target: State) -> None:
    assert not can_move(source, target)
    with pytest.raises(FailedPrecondition) as caught:
        check_move(source, target)
    expected = "CONVERSATION_CLOSED" if source is C else "ILLEGAL_STATE_TRANSITION"
    assert caught.value.reason == expected
    if source is not C:
        assert f"from {source} to {target}" in str(caught.value)


def test_closed_is_final() -> None:
    assert TRANSITIONS[C] == frozenset()
    for target in State:
        with pytest.raises(FailedPrecondition, match="closed is final"):
            check_move(C, target)


def test_staying_in_a_state_is_not_a_move() -> None:
    for state in State:
        assert not can_move(state, state)
