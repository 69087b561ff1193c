from __future__ import annotations

import pytest

from testing.clients import bearer_client
from testing.factories import PlaceFactory, UserFactory


@pytest.fixture
def outsider_api():
    """A nurse of another place."""
    return bearer_client(UserFactory(places=[PlaceFactory()], email="outsider@example.org"))
