"""Assertions shared by every app's tests."""

from __future__ import annotations

from typing import Any

# The user payload of the API contract, written out here rather than read from
# accounts.serializers, so that a field added to or dropped from the serializer fails a test.
USER_FIELDS = frozenset(
    {"id", "email", "first_name", "last_name", "date_joined"}  # who, since when
    | {"role", "places", "is_active", "must_change_password"}  # what they may do
)


def assert_json(response: Any, status: int) -> Any:
    """The response has the expected status; returns its JSON body."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    return response.json()


def assert_error(
    response: Any, status: int, code: str | None = None, *, field: str | None = None
) -> dict[str, Any]:
    """The contract's error shape with the expected status (and code, and ``details`` naming
    ``field``); returns the error."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    if code is not None:
        assert body["error"]["code"] == code, body
    if field is not None:
        assert field in body["error"]["details"], body
    error: dict[str, Any] = body["error"]
    return error


def assert_sees_only(api: Any, collection: str, mine: Any, other: Any) -> dict[str, Any]:
    """The caller lists only ``mine`` of the collection and reads it; ``other`` answers 404
    `not_found`, as if it did not exist. Returns the list's body."""
    response = api.get(collection)
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    assert [row["id"] for row in body["results"]] == [mine.pk]
    assert api.get(f"{collection}{mine.pk}/").status_code == 200
    assert_error(api.get(f"{collection}{other.pk}/"), 404, "not_found")
    return body


def assert_anonymous_refused(
    api: Any, collection: str, item: str, *, create: dict[str, Any], change: dict[str, Any]
) -> None:
    """Without credentials a collection is neither listed nor added to (``create``), and one of
    its items (at ``item``) neither read nor changed (``change``): 401 `not_authenticated`."""
    assert_error(api.get(collection), 401, "not_authenticated")
    assert_error(api.get(item), 401, "not_authenticated")
    assert_error(api.post(collection, create), 401, "not_authenticated")
    assert_error(api.patch(item, change), 401, "not_authenticated")
