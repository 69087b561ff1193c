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
  either channel or a brief deviation does not break a stretch. A short agreement that the
  fetal trace enters and leaves at the same level, without a jump or a dropout, is the
  mother's rate crossing the fetus's (her acceleration with a contraction), not a capture.
- **From the fetal channel alone** (the maternal channel missing): the trace jumps within a
  second or two, or across a dropout, from the fetal level down to a rate typical of the
  mother in labour and holds it, until it jumps back. A fetal deceleration does not do this:
  it slides down over seconds and comes back the same way.

Reads, never changes, its inputs; linear in the window's length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from operator import sub

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
    track_bpm: float = 12  # a stretch goes on while the fetal channel stays this near its level
    bridge_seconds: int = 10  # ... or leaves it for no longer than this
    # A stretch of agreement shorter than ``crossing_max_seconds`` is a crossing, not a capture,
    # when the fetal channel in the ``crossing_look_seconds`` before it and after it (with
    # signal for half of them) stays within ``crossing_bpm`` of the stretch's median rate for
    # ``crossing_share`` of its seconds: the fetal trace went on through it unchanged while
    # the mother's rate passed. A transducer that finds the mother jumps or drops out. 0: off.
    crossing_max_seconds: int = 120
    crossing_look_seconds: int = 30
    crossing_bpm: float = 10
    crossing_share: float = 0.9
    # A confirmed stretch is left out of the analysis when its median rate is at least this
    # (FIGO's normal baseline begins at 110): there the mother's trace passes for a reassuring
    # fetal one. Below it, it reads as a deceleration or bradycardia, which is not hidden: a
    # fetus decelerating to its mother's rate looks the same until someone checks.
    exclude_from_bpm: float = 110
    # A piece of the fetal trace: its seconds follow each other with dropouts of at most
    # ``piece_gap_seconds`` and steps of at most ``piece_jump_bpm`` from one second to the next
    # (a heart does not change its rate by more in a second; a transducer that loses the fetus
    # and finds the mother does). A piece is judged as a whole, from ``piece_min_seconds``.
    piece_gap_seconds: int = 30
    piece_jump_bpm: float = 25
    piece_min_seconds: int = 10
    # Without the maternal channel: a piece below ``maternal_rate_max_bpm`` (the mother's rate
    # in labour; a fetus rarely stays there) with a neighbouring piece, within
    # ``neighbour_seconds``, at least ``level_drop_bpm`` higher (the fetus it replaced).
    maternal_rate_max_bpm: float = 105
    level_drop_bpm: float = 25
    neighbour_seconds: int = 240
    # ... unless her rate, read at least ``mother_context_min_seconds`` in the
    # ``mother_context_seconds`` before and after the piece, has a median at least
    # ``mother_far_bpm`` away from the piece's: the low trace is not hers (a fetal
    # deceleration seen across a dropout). 0: off.
    mother_context_seconds: int = 300
    mother_context_min_seconds: int = 30
    mother_far_bpm: float = 15


@dataclass(frozen=True, slots=True)
class MaternalCapture:
    """Per second of the grid: ``seconds`` where the fetal channel records the mother, of
    them those ``confirmed`` by the maternal channel (the fetal channel agrees with her rate,
    or carries on a stretch that did; the others rest on the fetal channel's own shape), and
    of those the ones the analysis must leave out, ``excluded``: the confirmed stretches at a
    rate that could pass for a normal fetal baseline (``exclude_from_bpm``)."""

    seconds: list[bool]
    confirmed: list[bool]
    excluded: list[bool]

    def part(self, start: int) -> MaternalCapture:
        """The same from index ``start`` on."""
        return MaternalCapture(self.seconds[start:], self.confirmed[start:], self.excluded[start:])

    def ongoing(self, fhr: Sequence[float | None], *, within: int) -> tuple[int, bool, bool] | None:
        """The stretch the latest of the last ``within`` seconds with fetal signal belongs
        to, if it is flagged: (its length in seconds up to the end, whether any of it is
        confirmed, whether any is excluded); None when that second is not flagged or there
        is none."""
        count = len(fhr)
        last = next(
            (k for k in range(count - 1, count - 1 - within, -1) if k >= 0 and fhr[k] is not None),
            None,
        )
        if last is None or not self.seconds[last]:
            return None
        first = last
        while first > 0 and self.seconds[first - 1]:
            first -= 1
        return (
            count - first,
            any(self.confirmed[first : last + 1]),
            any(self.excluded[first : last + 1]),
        )


def maternal_channel(ecg: Series, pulse: Series) -> Series:
    """The mother's heart rate on the grid: her ECG heart rate where it has a reading, else
    her pulse (an oximeter's or the toco transducer's pulse sensor); the same object when
    the pulse has no reading at all."""
    if pulse.count(None) == len(pulse):
        return ecg
    return [p if e is None else e for e, p in zip(ecg, pulse, strict=True)]


def maternal_capture(
    fhr: Sequence[float | None],
    mhr: Sequence[float | None] | None = None,
    *,
    params: MaternalParams | None = None,
) -> MaternalCapture:
    """Per second of the grid, whether the fetal channel records the mother (``mhr`` None or
    all None: without the maternal channel)."""
    p = params or MaternalParams()
    count = len(fhr)
    if mhr is not None and len(mhr) != count:
        raise ValueError("the fetal and maternal series must be on the same grid")
    if mhr is None or mhr.count(None) == count:
        agree = [0] * count
        flags = [False] * count
    else:
        agree = _agreement(fhr, mhr, p)
        flags, contradicted = _window_agreement(agree, p)
        _drop_crossings(flags, fhr, p)
        _track(flags, fhr, contradicted, p)
    pieces = [q for q in _pieces(fhr, p) if q.seconds >= p.piece_min_seconds]
    pieces_alone: list[tuple[int, _Piece]] = []  # hardly compared with the mother's rate
    for i, piece in enumerate(pieces):
        part = agree[piece.start : piece.end]
        good, bad = part.count(1), part.count(-1)
        if good + bad >= p.piece_min_seconds:
            # Judged against the mother: hers when most of it agrees, where it is compared
            # over a fair part of it (a piece that ran on from the fetus is not).
            if good >= p.agreement_share * (good + bad) and 3 * good >= piece.seconds:
                flags[piece.start : piece.end] = [True] * (piece.end - piece.start)
            continue
        pieces_alone.append((i, piece))
    confirmed = list(flags)
    for i, piece in pieces_alone:
        # Hardly any maternal rate to compare with: a low piece the trace jumped to from a
        # fetal level, or jumps back from, at a level her rate around it does not deny.
        if (
            piece.level < p.maternal_rate_max_bpm
            and any(
                other.level >= piece.level + p.level_drop_bpm
                and other.start - piece.end <= p.neighbour_seconds
                and piece.start - other.end <= p.neighbour_seconds
                for other in pieces[max(0, i - 2) : i + 3]
            )
            and not _mother_elsewhere(piece, mhr, p)
        ):
            flags[piece.start : piece.end] = [True] * (piece.end - piece.start)
    excluded = [False] * count
    for start, end in capture_stretches(confirmed):
        values = sorted(v for v in fhr[start:end] if v is not None)
        if values and values[len(values) // 2] >= p.exclude_from_bpm:
            excluded[start:end] = [True] * (end - start)
    return MaternalCapture(seconds=flags, confirmed=confirmed, excluded=excluded)


def _mother_elsewhere(piece: _Piece, mhr: Sequence[float | None] | None, p: MaternalParams) -> bool:
    """Whether the mother's rate around ``piece`` (``mother_context_seconds`` on either
    side, read for at least ``mother_context_min_seconds``) has its median at least
    ``mother_far_bpm`` away from the piece's level."""
    if mhr is None or not p.mother_context_seconds:
        return False
    lo = max(0, piece.start - p.mother_context_seconds)
    values = sorted(m for m in mhr[lo : piece.end + p.mother_context_seconds] if m is not None)
    if len(values) < p.mother_context_min_seconds:
        return False
    return abs(values[len(values) // 2] - piece.level) >= p.mother_far_bpm


def _agreement(
    fhr: Sequence[float | None], mhr: Sequence[float | None], p: MaternalParams
) -> list[int]:
    """Per second: +1 where the fetal channel agrees with the mother's rate, -1 where it
    differs from her rate measured or carried at most ``contradict_hold_seconds``, 0
    otherwise (a rate carried far is an estimate: it may confirm, not contradict).

    Her rate is carried across her channel's dropouts: a second within ``hold_seconds`` of
    her readings on both sides takes the straight line between them, within it on one side
    only, that reading."""
    count = len(fhr)
    previous = [-1] * count  # the latest maternal reading at or before each second
    last = -1
    for k, m in enumerate(mhr):
        if m is not None:
            last = k
        previous[k] = last
    agree = [0] * count
    tolerance, hold, recent = p.tolerance_bpm, p.hold_seconds, p.contradict_hold_seconds
    following = count  # the next maternal reading at or after k
    for k in range(count - 1, -1, -1):
        m = mhr[k]
        if m is not None:
            following = k
        f = fhr[k]
        if f is None:
            continue
        if m is not None:
            agree[k] = 1 if abs(f - m) <= tolerance else -1
            continue
        before = previous[k]
        since, until = k - before, following - k
        near_before = before >= 0 and since <= hold
        near_after = following < count and until <= hold
        a, b = mhr[before], mhr[following] if following < count else None
        if near_before and near_after and a is not None and b is not None:
            m = a + (b - a) * since / (since + until)
        elif near_before:
            m = a
        elif near_after:
            m = b
        if m is None:
            continue
        if abs(f - m) <= tolerance:
            agree[k] = 1
        elif (near_before and since <= recent) or (near_after and until <= recent):
            agree[k] = -1
    return agree


def _window_agreement(agree: list[int], p: MaternalParams) -> tuple[list[bool], list[bool]]:
    """Each second whose centred window holds enough agreeing seconds, and at least
    ``agreement_share`` of the seconds judged in it; and each second whose window holds
    enough judged seconds but too few agreeing (the mother's rate says it is not hers)."""
    count = len(agree)
    half = p.window_seconds // 2
    pad = [0] * half
    # Prefix sums of agreeing and judged seconds: each window's counts by one subtraction
    # (agree is -1, 0 or 1: agreeing = (judged + agree) / 2, judged = agree squared).
    agreeing2 = [0, *accumulate(pad + list(map(abs, agree)) + pad)]
    sums = [0, *accumulate(pad + agree + pad)]
    judged = agreeing2
    agreeing = [(j + t) // 2 for j, t in zip(judged, sums, strict=True)]
    width = 2 * half + 1
    good = list(map(sub, agreeing[width:], agreeing[:count]))
    seen = list(map(sub, judged[width:], judged[:count]))
    share, least = p.agreement_share, p.agreement_min_seconds
    flags = [g >= least and g >= share * n for g, n in zip(good, seen, strict=True)]
    contradicted = [n >= least and g < share * n for g, n in zip(good, seen, strict=True)]
    return flags, contradicted


def _track(
    flags: list[bool],
    fhr: Sequence[float | None],
    contradicted: list[bool],
    p: MaternalParams,
) -> None:
    """Carry each flagged stretch on, both ways, while the fetal channel stays near the
    level it had there and the mother's rate, where known, does not contradict it: the
    mother's rate changes slowly, so the same rate without her channel is still hers. A few
    seconds away from the level (``bridge_seconds``) do not end it, nor does a dropout of up
    to ``piece_gap_seconds``."""
    count = len(fhr)
    for start, end in capture_stretches(flags):
        after = range(end, count)
        before = range(start - 1, -1, -1)
        _carry(flags, fhr, contradicted, p, after, _edge_level(fhr, range(end - 1, start - 1, -1)))
        _carry(flags, fhr, contradicted, p, before, _edge_level(fhr, range(start, end)))


def _edge_level(fhr: Sequence[float | None], order: range) -> float | None:
    """The mean of the first ten seconds with signal in ``order`` (a stretch's edge)."""
    values: list[float] = []
    for k in order:
        v = fhr[k]
        if v is not None:
            values.append(v)
            if len(values) == 10:
                break
    return sum(values) / len(values) if values else None


def _carry(
    flags: list[bool],
    fhr: Sequence[float | None],
    contradicted: list[bool],
    p: MaternalParams,
    order: range,
    level: float | None,
) -> None:
    if level is None:
        return
    last = order.start
    pending: list[int] = []  # seconds away from the level since the last one near it
    for k in order:
        if flags[k]:
            return  # the next stretch: it carries itself on
        f = fhr[k]
        if f is None:
            if abs(k - last) > p.piece_gap_seconds:
                return
            continue
        last = k
        if contradicted[k]:
            return
        if abs(f - level) <= p.track_bpm:
            for j in (*pending, k):
                flags[j] = True
            pending = []
            level += 0.2 * (f - level)
        else:
            pending.append(k)
            if len(pending) > p.bridge_seconds:
                return


def _drop_crossings(flags: list[bool], fhr: Sequence[float | None], p: MaternalParams) -> None:
    """Unflag the short stretches the fetal trace goes on through unchanged on both sides
    (``crossing_max_seconds``): there the mother's rate crossed the fetus's."""
    if not p.crossing_max_seconds:
        return
    count, look = len(fhr), p.crossing_look_seconds
    for start, end in capture_stretches(flags):
        if end - start >= p.crossing_max_seconds or start < look or end + look > count:
            continue
        values = sorted(v for v in fhr[start:end] if v is not None)
        if not values:
            continue
        level = values[len(values) // 2]
        if (
            _near_share(fhr, range(start - look, start), level, p) >= p.crossing_share
            and _near_share(fhr, range(end, end + look), level, p) >= p.crossing_share
        ):
            flags[start:end] = [False] * (end - start)


def _near_share(
    fhr: Sequence[float | None], seconds: range, level: float, p: MaternalParams
) -> float:
    """The share of ``seconds`` with signal that lie within ``crossing_bpm`` of ``level`` (0
    when fewer than half of them have signal)."""
    values = [v for v in (fhr[k] for k in seconds) if v is not None]
    if not values or 2 * len(values) < len(seconds):
        return 0.0
    return sum(abs(v - level) <= p.crossing_bpm for v in values) / len(values)


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
    marks = bytes(map(bool, flags))  # scanned by bytes.find, at C speed
    out: list[tuple[int, int]] = []
    start = marks.find(1)
    while start >= 0:
        end = marks.find(0, start)
        if end < 0:
            end = len(marks)
        out.append((start, end))
        start = marks.find(1, end)
    return out
