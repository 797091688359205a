"""Roles form a ladder: the whole table of who may do what a role needs."""

import pytest

from agentos.roles import Role

LADDER = [Role.VIEWER, Role.OPERATOR, Role.ADMIN]


@pytest.mark.parametrize("has", LADDER)
@pytest.mark.parametrize("needs", LADDER)
def test_a_role_allows_its_own_and_those_below(has: Role, needs: Role) -> None:
    assert has.allows(needs) == (LADDER.index(has) >= LADDER.index(needs))
