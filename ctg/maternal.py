"""Maternal capture: the seconds where the fetal channel records the mother's heart rate.

A Doppler transducer aimed at the fetal heart may pick up the mother's pulse (her aorta or
uterine arteries) instead; the fetal channel then shows a plausible trace, usually lower than
the fetus's, that hides whatever the fetus is doing. The FHRMA experts (Boudet et al.,
Biosensors 2022;12:691) marked such stretches on Doppler recordings; this module flags them on
the product's one-second grid (``ctg.analysis.per_second``), pure and without Django.

Two kinds of evidence, each a few named parameters of :class:`MaternalParams` (their sources
and the figures on the FHRMA training set: docs/ctg.md, "Maternal capture"):

- **With the maternal channel** (the monitor makers' cross-channel verification): the fetal
  channel agrees with the maternal heart rate. The maternal rate is carried across its own
  dropouts (it changes slowly), and agreement is judged over a sliding window, so a dropout of
  either channel or a brief deviation does not break a stretch.
- **From the fetal channel alone** (the maternal channel missing): the trace jumps within a
  second or two, or across a dropout, from the fetal level down to a rate typical of the
  mother in labour and holds it, until it jumps back. A fetal deceleration does not do this:
  it slides down over seconds and comes back the same way.

Reads, never changes, its inputs; linear in the window's length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Series = list[float | None]


@dataclass(frozen=True, slots=True)
class MaternalParams:
    """Thresholds of the detector (docs/ctg.md, "Maternal capture", gives each its reason)."""

    tolerance_bpm: float = 5  # the fetal channel within this of the maternal rate: the same
    hold_seconds: int = 60  # the maternal rate carried across a dropout up to this long
    contradict_hold_seconds: int = 10  # ... and to tell that the fetal channel is not hers
    window_seconds: int = 61  # agreement judged over this sliding window (odd: centred)
    agreement_share: float = 0.5  # ... which holds when this share of its seconds agree
    agreement_min_seconds: int = 5  # ... and at least this many do
    track_bpm: float = 10  # a stretch goes on while the fetal channel stays this near its level
    bridge_seconds: int = 5  # ... or leaves it for no longer than this
    # A piece of the fetal trace: its seconds follow each other with dropouts of at most
    # ``piece_gap_seconds`` and steps of at most ``piece_jump_bpm`` from one second to the next
    # (a heart does not change its rate by more in a second; a transducer that loses the fetus
    # and finds the mother does). A piece is judged as a whole, from ``piece_min_seconds``.
    piece_gap_seconds: int = 15
    piece_jump_bpm: float = 25
    piece_min_seconds: int = 10
    # Without the maternal channel: a piece below ``maternal_rate_max_bpm`` (the mother's rate
    # in labour; a fetus rarely stays there) with a neighbouring piece, within
    # ``neighbour_seconds``, at least ``level_drop_bpm`` higher (the fetus it replaced).
    maternal_rate_max_bpm: float = 105
    level_drop_bpm: float = 25
    neighbour_seconds: int = 120


def maternal_reference(mhr: Sequence[float | None], *, hold: int) -> Series:
    """The maternal rate on every second, carried across its dropouts: a second within
    ``hold`` seconds of a reading on both sides takes the straight line between them, within
    ``hold`` of one side only that reading; farther from any, None."""
    count = len(mhr)
    out: Series = list(mhr)
    previous: list[int] = [-1] * count  # index of the latest reading at or before, or -1
    last = -1
    for k in range(count):
        if mhr[k] is not None:
            last = k
        previous[k] = last
    following = count  # index of the next reading after k, or count
    for k in range(count - 1, -1, -1):
        if mhr[k] is not None:
            following = k
            continue
        before = previous[k]
        near_before = before >= 0 and k - before <= hold
        near_after = following < count and following - k <= hold
        if near_before and near_after:
            a, b = mhr[before], mhr[following]
            assert a is not None and b is not None
            out[k] = a + (b - a) * (k - before) / (following - before)
        elif near_before:
            out[k] = mhr[before]
        elif near_after:
            out[k] = mhr[following]
    return out


def maternal_capture(
    fhr: Sequence[float | None],
    mhr: Sequence[float | None],
    *,
    params: MaternalParams | None = None,
) -> list[bool]:
    """Per second of the grid, whether the fetal channel records the mother."""
    p = params or MaternalParams()
    reference = maternal_reference(mhr, hold=p.hold_seconds)
    recent = maternal_reference(mhr, hold=p.contradict_hold_seconds)
    # +1 a second where the fetal channel agrees with the mother's rate (carried across her
    # channel's dropouts), -1 where it differs from her rate measured or carried only a few
    # seconds, 0 otherwise (a rate carried far is an estimate: it may confirm, not contradict).
    agree = [0] * len(fhr)
    tolerance = p.tolerance_bpm
    for k, (f, m) in enumerate(zip(fhr, reference, strict=True)):
        if f is not None and m is not None:
            if abs(f - m) <= tolerance:
                agree[k] = 1
            elif recent[k] is not None:
                agree[k] = -1
    flags, contradicted = _window_agreement(agree, p)
    _track(flags, fhr, contradicted, p, range(len(fhr)))
    _track(flags, fhr, contradicted, p, range(len(fhr) - 1, -1, -1))
    pieces = [q for q in _pieces(fhr, p) if q.seconds >= p.piece_min_seconds]
    for i, piece in enumerate(pieces):
        part = agree[piece.start : piece.end]
        good, bad = part.count(1), part.count(-1)
        if good + bad >= p.piece_min_seconds:
            # Judged against the mother: hers when most of it agrees, where it is compared
            # over a fair part of it (a piece that ran on from the fetus is not).
            if good >= p.agreement_share * (good + bad) and 3 * good >= piece.seconds:
                flags[piece.start : piece.end] = [True] * (piece.end - piece.start)
            continue
        # Hardly any maternal rate to compare with: a low piece the trace jumped to from a
        # fetal level, or jumps back from.
        if piece.level < p.maternal_rate_max_bpm and any(
            other.level >= piece.level + p.level_drop_bpm
            and other.start - piece.end <= p.neighbour_seconds
            and piece.start - other.end <= p.neighbour_seconds
            for other in pieces[max(0, i - 2) : i + 3]
        ):
            flags[piece.start : piece.end] = [True] * (piece.end - piece.start)
    return flags


def _track(
    flags: list[bool],
    fhr: Sequence[float | None],
    contradicted: list[bool],
    p: MaternalParams,
    order: range,
) -> None:
    """Carry each flagged stretch on (in ``order``) while the fetal channel stays near the
    level it had there and the mother's rate, where known, does not contradict it: the
    mother's rate changes slowly, so the same rate without her channel is still hers. A few
    seconds away from the level (``bridge_seconds``) do not end it, nor does a dropout of up
    to ``piece_gap_seconds``."""
    level: float | None = None
    last = -1
    pending: list[int] = []  # seconds away from the level since the last one near it
    for k in order:
        f = fhr[k]
        if f is None:
            if level is not None and abs(k - last) > p.piece_gap_seconds:
                level, pending = None, []
            continue
        last = k
        if flags[k]:
            level = f if level is None else level + 0.2 * (f - level)
            pending = []
        elif level is None:
            continue
        elif contradicted[k]:
            level, pending = None, []
        elif abs(f - level) <= p.track_bpm:
            for j in (*pending, k):
                flags[j] = True
            pending = []
            level += 0.2 * (f - level)
        else:
            pending.append(k)
            if len(pending) > p.bridge_seconds:
                level, pending = None, []


def _window_agreement(agree: list[int], p: MaternalParams) -> tuple[list[bool], list[bool]]:
    """Each second whose centred window holds enough agreeing seconds, and at least
    ``agreement_share`` of the seconds judged in it; and each second whose window holds
    enough judged seconds but too few agreeing (the mother's rate says it is not hers)."""
    count = len(agree)
    agreeing = [0] * (count + 1)  # prefix sums: each window's counts in O(1)
    judged = [0] * (count + 1)
    for k, a in enumerate(agree):
        agreeing[k + 1] = agreeing[k] + (a > 0)
        judged[k + 1] = judged[k] + (a != 0)
    half = p.window_seconds // 2
    share, least = p.agreement_share, p.agreement_min_seconds
    flags = [False] * count
    contradicted = [False] * count
    for k in range(count):
        lo, hi = max(0, k - half), min(count, k + half + 1)
        good = agreeing[hi] - agreeing[lo]
        n = judged[hi] - judged[lo]
        if good >= share * n:
            flags[k] = good >= least
        else:
            contradicted[k] = n >= least
    return flags, contradicted


@dataclass(frozen=True, slots=True)
class _Piece:
    start: int
    end: int  # after its last second with signal
    seconds: int  # with signal
    level: float  # the median rate


def _pieces(fhr: Sequence[float | None], p: MaternalParams) -> list[_Piece]:
    """The fetal trace cut where it drops out for long or jumps."""
    out: list[_Piece] = []
    values: list[float] = []
    start = previous = -1
    prior = 0.0

    def close() -> None:
        values.sort()
        out.append(_Piece(start, previous + 1, len(values), values[len(values) // 2]))
        values.clear()

    for k, v in enumerate(fhr):
        if v is None:
            continue
        if values and (k - previous > p.piece_gap_seconds or abs(v - prior) > p.piece_jump_bpm):
            close()
        if not values:
            start = k
        values.append(v)
        previous, prior = k, v
    if values:
        close()
    return out


def capture_stretches(flags: Sequence[bool]) -> list[tuple[int, int]]:
    """The flagged stretches as index ranges ``[start, end)``."""
    out: list[tuple[int, int]] = []
    start: int | None = None
    for k, flag in enumerate(flags):
        if flag and start is None:
            start = k
        elif not flag and start is not None:
            out.append((start, k))
            start = None
    if start is not None:
        out.append((start, len(flags)))
    return out
