"""How far the alarm evaluators are behind: per partition of the readings stream, its length,
pending and undelivered entries, how long the oldest of them has waited, the last delivered
id and the lease owner (``alarms_lag``,
the health check and the metrics read it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, cast

from monitoring.stream.entries import (
    GROUP,
    lease_key,
    partition_key,
    partitions,
    redis_client,
    text,
)

LAG_SCAN_LIMIT = 10_000  # Redis < 7 reports no group lag: count at most this many entries


# --- Lag ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartitionLag:
    partition: int
    length: int  # entries in the stream (XLEN), evaluated or not
    pending: int  # delivered to an evaluator, not yet acknowledged (the group's PEL)
    lag: int  # not yet delivered to the group
    lag_exact: bool  # False: at least ``lag`` (counted up to LAG_SCAN_LIMIT on Redis < 7)
    last_delivered_id: str | None  # None: no evaluator has ever read this partition
    owner: str | None  # the consumer holding the lease; None: nobody reads it now
    # How long the oldest entry not yet evaluated (pending or not yet delivered) has waited,
    # by Redis's clock (entry ids are its milliseconds); 0.0 when none waits.
    waiting_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def stream_lag(*, group: str = GROUP) -> list[PartitionLag]:
    """Per partition: length, pending and undelivered entries, last delivered id, lease owner."""
    client = redis_client()
    count = partitions()
    pipe = client.pipeline(transaction=False)
    for partition in range(count):
        pipe.xlen(partition_key(partition))
        pipe.xinfo_groups(partition_key(partition))  # an error when the stream does not exist
        pipe.get(lease_key(partition))
        pipe.xpending(partition_key(partition), group)  # an error without the group
    pipe.time()
    results = pipe.execute(raise_on_error=False)
    now_ms = _ms(results[-1])
    rows = []
    firsts = client.pipeline(transaction=False)  # the first undelivered entry of each
    for partition in range(count):
        length, groups, owner, pending_info = results[partition * 4 : partition * 4 + 4]
        if not isinstance(groups, list):
            groups = []  # the stream does not exist (yet)
        info = next((g for g in groups if text(g["name"]) == group), None)
        pending, lag, exact, last = 0, int(length), True, None
        if info is not None:
            pending = int(info["pending"])
            last = text(info["last-delivered-id"])
            if info.get("lag") is not None:
                lag = int(info["lag"])
            elif last != "0-0":
                # Redis < 7 (or a lag Redis cannot compute after deletions): count them.
                after = cast(
                    "list[Any]",
                    client.xrange(partition_key(partition), f"({last}", "+", LAG_SCAN_LIMIT),
                )
                lag, exact = len(after), len(after) < LAG_SCAN_LIMIT
        oldest = None
        if isinstance(pending_info, dict) and pending_info.get("min"):
            oldest = _id_ms(pending_info["min"])
        firsts.xrange(partition_key(partition), f"({last}" if last else "-", "+", 1)
        rows.append(
            PartitionLag(
                partition=partition,
                length=int(length),
                pending=pending,
                lag=lag,
                lag_exact=exact,
                last_delivered_id=last,
                owner=text(owner) if owner else None,
                waiting_seconds=0.0 if oldest is None else max(0.0, (now_ms - oldest) / 1000),
            )
        )
    for index, first in enumerate(firsts.execute(raise_on_error=False)):
        if isinstance(first, list) and first:
            waited = max(0.0, (now_ms - _id_ms(first[0][0])) / 1000)
            if waited > rows[index].waiting_seconds:
                rows[index] = replace(rows[index], waiting_seconds=waited)
    return rows


def _id_ms(entry_id: bytes | str) -> int:
    """The Redis time (ms) at which a stream entry was appended: its id's first part."""
    return int(text(entry_id).split("-", 1)[0])


def _ms(reply: Any) -> int:
    seconds, microseconds = reply
    return int(seconds) * 1000 + int(microseconds) // 1000
