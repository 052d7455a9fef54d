"""Per-owner fairness: no owner's herd delays the others.

Two mechanisms. **Order**: what a pass takes from a batch of due jobs or due runs interleaves
owners round-robin (`interleave`), and an owner that fills a full batch is left out of a second
read (`heavy_owners`), so small owners get into the batch at all. **Cap**: with
`CRON_MAX_RUNNING_PER_OWNER` > 0, a run starts only with one of its owner's slots, taken
conditionally in `cron_owner_slots` (`OwnerGate.admit`, before the start write) and given back
when the run ends, is reaped or does not start; a run over the cap goes back to the queue.
The functions above `OwnerGate` are pure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

import structlog
from bson import ObjectId

from worker.owner_store import OwnerSlotStore
from worker.store import JobView, RunView, Start

T = TypeVar("T")
# An owner holding more than this share of a full batch is left out of the second read.
HEAVY_SHARE: Final = 0.1
# A run over its owner's cap is queued again this long later: a slot frees when a run of the
# owner ends, on any worker, and no worker is told; the wait bounds the owner's throughput to
# about cap / (handler time + this wait), the price of one more claim pass per wait.
OWNER_CAP_WAIT_SECONDS: Final = 0.25
# After a second read found no other owner, none is tried for this long (a herd of one owner
# would otherwise pay a wasted read, a scan on the stand-in, for every batch).
QUIET_SECONDS: Final = 1.0

log = structlog.get_logger("worker.fairness")


def interleave(items: Iterable[T], owner_of: Callable[[T], str]) -> list[T]:
    """Round-robin over owners: the first item of each owner (owners in order of first
    appearance), then the second of each, ...; each owner's items keep their order."""
    queues: dict[str, list[T]] = {}
    for item in items:
        queues.setdefault(owner_of(item), []).append(item)
    result: list[T] = []
    depth = 0
    lists = list(queues.values())
    while lists:
        result.extend(queue[depth] for queue in lists)
        depth += 1
        lists = [queue for queue in lists if len(queue) > depth]
    return result


def heavy_owners(
    items: Sequence[T], owner_of: Callable[[T], str], limit: int, cap: int
) -> set[str]:
    """Owners that crowd a *full* batch out (none if the batch is not full): those holding
    more than a tenth of it, or more than their running cap (`cap` > 0): they could not start
    more than that anyway."""
    if len(items) < limit:
        return set()
    share = max(1, int(limit * HEAVY_SHARE))
    if cap > 0:
        share = min(share, cap)
    counts: dict[str, int] = {}
    for item in items:
        owner = owner_of(item)
        counts[owner] = counts.get(owner, 0) + 1
    return {owner for owner, count in counts.items() if count > share}


def job_owner(job: JobView) -> str:
    """The owner a job counts for."""
    return job.owner_id


def run_owner(run: RunView) -> str:
    """The owner a run counts for."""
    return run.owner_id or ""


class SecondReads:
    """Whether a second read past the crowding owners is worth making now.

    After one found nothing (a herd of one owner), none is made for `QUIET_SECONDS`: another
    owner's jobs that fall due meanwhile wait at most that long for a place in the batch.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._quiet_until = 0.0

    def wanted(self, heavy: set[str]) -> bool:
        """Some owners crowd the batch, and other owners had due work lately."""
        return bool(heavy) and self.clock() >= self._quiet_until

    def found(self, count: int) -> None:
        """The second read returned `count` items."""
        if count == 0:
            self._quiet_until = self.clock() + QUIET_SECONDS


def merge_unique(first: Sequence[T], second: Sequence[T], key: Callable[[T], object]) -> list[T]:
    """`first` then the items of `second` not in it (two reads may overlap)."""
    seen = {key(item) for item in first}
    return [*first, *(item for item in second if key(item) not in seen)]


@dataclass
class Admission:
    """How a pass's starts fit their owners' slots."""

    # Starts whose run holds a slot already (a repeated pass): admitted without a write.
    held: list[Start] = field(default_factory=list)
    # Per owner, the runs to add to its holders (they fit by the read).
    takes: dict[str, list[Start]] = field(default_factory=dict)
    # Starts over their owner's cap: queued again.
    over: list[Start] = field(default_factory=list)


def plan_admission(
    starts: Sequence[Start], holders: Mapping[str, Sequence[ObjectId]], cap: int
) -> Admission:
    """Which starts may take a slot by the holders read (pure); starts keep their order."""
    admission = Admission()
    used = {owner: set(runs) for owner, runs in holders.items()}
    for start in starts:
        owner = start.job.owner_id
        listed = used.setdefault(owner, set())
        if start.run_id in listed:
            admission.held.append(start)
        elif len(listed) < cap:
            listed.add(start.run_id)
            admission.takes.setdefault(owner, []).append(start)
        else:
            admission.over.append(start)
    return admission


class OwnerGate:
    """Takes owners' run slots for a pass's starts (2-3 commands per pass, whatever its size)."""

    def __init__(self, slots: OwnerSlotStore, cap: int) -> None:
        self.slots = slots
        self.cap = cap

    @property
    def enabled(self) -> bool:
        """Whether a cap is configured."""
        return self.cap > 0

    async def admit(self, starts: Sequence[Start]) -> tuple[list[Start], list[Start]]:
        """(admitted, over the cap). Admitted starts hold a slot of their owner; the caller
        releases it (`release`) if the start write then does not apply."""
        if not self.enabled or not starts:
            return list(starts), []
        owners = {start.job.owner_id for start in starts}
        holders = await self.slots.holders(owners)
        if owners - holders.keys():
            await self.slots.create(owners - holders.keys())
        admission = plan_admission(starts, holders, self.cap)
        takes = {owner: [s.run_id for s in group] for owner, group in admission.takes.items()}
        admitted = list(admission.held)
        over = list(admission.over)
        if await self.slots.take(takes, self.cap) == len(takes):
            admitted.extend(start for group in admission.takes.values() for start in group)
        else:  # another worker took slots meanwhile: one read tells whose update applied
            now_held = await self.slots.holders(admission.takes.keys())
            for owner, group in admission.takes.items():
                listed = set(now_held.get(owner, ()))
                for start in group:
                    (admitted if start.run_id in listed else over).append(start)
        deferred: dict[str, int] = {}
        for start in over:
            deferred[start.job.owner_id] = deferred.get(start.job.owner_id, 0) + 1
        for owner, count in deferred.items():  # one line per owner and pass, not per run
            log.info("owner.at_cap", owner_id=owner, deferred_runs=count, cap=self.cap)
        order = {start.run_id: index for index, start in enumerate(starts)}
        return sorted(admitted, key=lambda s: order[s.run_id]), over

    async def release(self, run_ids: Sequence[ObjectId]) -> None:
        """Give back the slots of runs that did not start."""
        if self.enabled:
            await self.slots.release(run_ids)
