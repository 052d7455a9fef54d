"""Per-owner fairness, the pure parts: round-robin order, crowding owners, slot admission."""

from __future__ import annotations

from bson import ObjectId

from worker.fairness import (
    QUIET_SECONDS,
    SecondReads,
    heavy_owners,
    interleave,
    merge_unique,
    plan_admission,
)
from worker.store import Start, parse_job


def owner(item: tuple[str, int]) -> str:
    return item[0]


def test_owners_take_turns_each_keeping_its_order() -> None:
    items = [("big", n) for n in range(5)] + [("a", 0), ("b", 0), ("a", 1)]
    assert interleave(items, owner) == [
        ("big", 0),
        ("a", 0),
        ("b", 0),
        ("big", 1),
        ("a", 1),
        ("big", 2),
        ("big", 3),
        ("big", 4),
    ]


def test_one_big_owner_cannot_fill_the_first_places() -> None:
    items = [("big", n) for n in range(5000)] + [
        (f"small{o}", n) for o in range(50) for n in range(10)
    ]
    first = interleave(items, owner)[:510]
    assert sum(1 for item in first if item[0] == "big") == 10  # one per round
    assert {item for item in first if item[0] != "big"} == {
        item for item in items if item[0] != "big"
    }


def test_interleaving_loses_and_duplicates_nothing() -> None:
    items = [("x", 1), ("y", 1), ("x", 2), ("z", 1), ("x", 3)]
    assert sorted(interleave(items, owner)) == sorted(items)
    assert interleave([], owner) == []


def test_only_a_full_batch_has_owners_crowding_it() -> None:
    batch = [("big", n) for n in range(95)] + [("a", n) for n in range(5)]
    assert heavy_owners(batch, owner, 100, cap=0) == {"big"}  # more than a tenth
    assert heavy_owners(batch, owner, 101, cap=0) == set()  # not full: nothing left out
    assert heavy_owners(batch, owner, 100, cap=4) == {"big", "a"}  # more than the cap
    assert heavy_owners(batch[:10], owner, 10, cap=0) == {"big"}  # a tenth is at least one


def test_a_second_read_adds_only_what_the_first_lacked() -> None:
    first = [("a", 1), ("b", 1)]
    second = [("b", 1), ("c", 1)]
    assert merge_unique(first, second, key=lambda item: item) == [("a", 1), ("b", 1), ("c", 1)]


def start(owner_id: str) -> Start:
    job = parse_job({"_id": ObjectId(), "ownerId": owner_id, "name": "j", "type": "noop"})
    return Start(ObjectId(), job)


def test_starts_fit_the_free_slots_of_their_owner() -> None:
    big = [start("big") for _ in range(4)]
    small = start("small")
    busy = [ObjectId()]
    admission = plan_admission([*big, small], {"big": busy}, cap=3)
    assert admission.takes == {"big": big[:2], "small": [small]}
    assert admission.over == big[2:]
    assert admission.held == []


def test_a_run_holding_a_slot_already_is_admitted_without_a_write() -> None:
    again = start("big")
    admission = plan_admission([again, start("big")], {"big": [again.run_id]}, cap=1)
    assert admission.held == [again]
    assert admission.takes == {}
    assert len(admission.over) == 1


def test_a_second_read_that_found_nothing_is_not_repeated_for_a_while() -> None:
    now = [0.0]
    reads = SecondReads(clock=lambda: now[0])
    assert not reads.wanted(set())  # nobody crowds the batch: no second read
    assert reads.wanted({"big"})
    reads.found(3)
    assert reads.wanted({"big"})  # other owners were there: keep looking
    reads.found(0)
    assert not reads.wanted({"big"})  # a herd of one owner: quiet for a while
    now[0] += QUIET_SECONDS
    assert reads.wanted({"big"})
