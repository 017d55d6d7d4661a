import pytest

from tests.annotator.api.helpers import client_for, team_create


@pytest.fixture
def team(db):
    return team_create()


@pytest.fixture
def clients(team):
    """One API client per role name (tokens), plus `anonymous`."""
    return {"anonymous": client_for(None)} | {
        role: client_for(user) for role, user in team.users.items()
    }
