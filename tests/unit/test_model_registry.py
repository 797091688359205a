"""The model registry's pure parts: the transition table, walked exhaustively, and refs."""

from __future__ import annotations

import pytest

from agentos import model_registry
from agentos.errors import Conflict, InvalidInput, PayloadTooLarge
from agentos.model_registry import ACTIONS, TRANSITIONS, ModelIn, Status

EXPECTED = {
    (Status.TRAINING, "deploy"): Status.DEPLOYED,
    (Status.TRAINING, "archive"): Status.ARCHIVED,
    (Status.DEPLOYED, "deploy"): Status.DEPLOYED,
    (Status.DEPLOYED, "archive"): Status.ARCHIVED,
    (Status.ARCHIVED, "deploy"): None,
    (Status.ARCHIVED, "archive"): Status.ARCHIVED,
}


def test_the_table_covers_every_status_and_action() -> None:
    assert set(TRANSITIONS) == {(s, a) for s in Status for a in ACTIONS}
    assert TRANSITIONS == EXPECTED


@pytest.mark.parametrize(("current", "action"), list(EXPECTED))
def test_each_transition(current: Status, action: str) -> None:
    expected = EXPECTED[(current, action)]
    if expected is None:
        with pytest.raises(Conflict) as refused:
            model_registry.transition(current, action, "m 1")
        assert refused.value.code == "invalid_transition"
    else:
        assert model_registry.transition(current, action, "m 1") is expected


def test_nothing_leaves_archived_and_nothing_returns_to_training() -> None:
    assert all(t in (Status.ARCHIVED, None) for (s, _), t in TRANSITIONS.items()
               if s is Status.ARCHIVED)
    assert Status.TRAINING not in TRANSITIONS.values()


@pytest.mark.parametrize(("ref", "parsed"), [
    ("churn", ("churn", None)), ("churn@2", ("churn", "2")),
    ("churn.v2@2024-01-01+rc1", ("churn.v2", "2024-01-01+rc1"))])
def test_refs(ref: str, parsed: tuple[str, str | None]) -> None:
    assert model_registry.parse_ref(ref) == parsed


@pytest.mark.parametrize("ref", ["", "Churn", "churn@", "churn@@1", "a/b", "churn@1/2",
                                 "x" * 64])
def test_bad_refs(ref: str) -> None:
    with pytest.raises(InvalidInput):
        model_registry.parse_ref(ref)


@pytest.mark.parametrize(("model", "error"), [
    (ModelIn("Bad", "1", "t"), InvalidInput),
    (ModelIn("m", "1/2", "t"), InvalidInput),
    (ModelIn("m", "1", "has space"), InvalidInput),
    (ModelIn("m", "1", "t", framework="a\nb"), InvalidInput),
    (ModelIn("m", "1", "t", artifact_uri="s3://x\n"), InvalidInput),
    (ModelIn("m", "1", "t", description="d" * 2001), InvalidInput),
    (ModelIn("m", "1", "t", metrics={"a": "x" * 70_000}), PayloadTooLarge),
])
def test_bad_registrations(model: ModelIn, error: type[Exception]) -> None:
    with pytest.raises(error):
        model_registry.check(model)
