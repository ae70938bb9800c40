"""Which free backend a waiter takes: not one that is down (unless all
are: they may be back), the one that served the conversation last (its prompt cache
is warm), then the least loaded."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Offer:
    """A backend as the queue sees it: its key in the slot counts, its slots."""

    key: str
    slots: int
    preferred: bool = False  # it wrote this conversation's last reply
    down: bool = False


def usable(offers: Sequence[Offer]) -> list[Offer]:
    """The offers not down (all of them if all are: they may be back)."""
    return [o for o in offers if not o.down] or list(offers)


def ranked(offers: Sequence[Offer], loads: Mapping[str, int]) -> list[Offer]:
    """The offers a slot may be taken on, best first (ties: in the order given)."""
    return sorted(
        usable(offers),
        key=lambda o: (not o.preferred, loads.get(o.key, 0) / max(1, o.slots)),
    )


def first_free(
    offers: Sequence[Offer], loads: Mapping[str, int], position: int = 1
) -> Offer | None:
    """The slot the one at `position` in the line takes: only while there are as many
    free slots as waiters up to it (those before it take theirs too), so nobody waits
    with a slot free, and nobody overtakes."""
    usable = ranked(offers, loads)
    free = sum(max(0, o.slots - loads.get(o.key, 0)) for o in usable)
    if free < position:
        return None
    return next(o for o in usable if loads.get(o.key, 0) < o.slots)
