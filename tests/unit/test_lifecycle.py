import pytest

from agentos.errors import Conflict
from agentos.lifecycle import TRANSITIONS, Status, is_mutable, transition

ALLOWED = {
    (Status.DRAFT, "publish"): Status.PUBLISHED,
    (Status.DEPRECATED, "publish"): Status.PUBLISHED,
    (Status.PUBLISHED, "deprecate"): Status.DEPRECATED,
    (Status.DEPRECATED, "archive"): Status.ARCHIVED,
}


@pytest.mark.parametrize("current", list(Status))
@pytest.mark.parametrize("action", sorted(TRANSITIONS))
def test_every_transition(current: Status, action: str) -> None:
    expected = ALLOWED.get((current, action))
    if expected is None:
        with pytest.raises(Conflict):
            transition(current, action, "x 1.0.0")
    else:
        assert transition(current, action, "x 1.0.0") is expected


def test_only_drafts_are_mutable() -> None:
    assert [s for s in Status if is_mutable(s)] == [Status.DRAFT]
