"""The integers the server accepts from outside (as decoded from JSON, where a boolean is an
``int`` too), and the one bound of its ids and seqs: 64-bit integers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import TypeIs

# The largest number a BigIntegerField holds: ids (BigAutoField, DEFAULT_AUTO_FIELD, never below
# 1) and a device's seq. A larger one names nothing and overflows the database driver.
INT64_MAX = 2**63 - 1


def is_int(value: Any) -> TypeIs[int]:
    """Whether ``value`` (as decoded from JSON) is an integer, not a boolean."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_id(value: Any) -> TypeIs[int]:
    """Whether ``value`` (as decoded from JSON) can be an id: an integer, not a boolean, from 1
    to :data:`INT64_MAX`."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= INT64_MAX
