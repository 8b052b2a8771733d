"""Which load in progress a reader may share (singleflight.joinable): only one whose database read cannot be older
than the reader's start, i.e. one that read the same generation from Redis, or one that has not begun."""

from __future__ import annotations

import asyncio

from statemgr.cache.singleflight import Flight, SingleFlight


async def _started(flights: SingleFlight, generation: bytes | None) -> tuple[Flight, asyncio.Event]:
    release = asyncio.Event()
    holder: list[Flight] = []

    async def run(flight: Flight) -> bytes | None:
        holder.append(flight)
        await release.wait()
        return b"\x0avalue"

    flights.start("k", generation, run)
    await asyncio.sleep(0)  # the flight's task takes its first step
    return holder[0], release


async def test_a_flight_not_begun_is_shared_by_anyone() -> None:
    flights = SingleFlight()
    flight, release = await _started(flights, b"1")
    assert not flight.begun
    assert flights.joinable("k", b"1") is flights.joinable("k", b"2") is flights.joinable("k", None) is not None
    release.set()
    await flights.cancel_all()


async def test_a_begun_flight_is_shared_only_at_its_generation() -> None:
    flights = SingleFlight()
    flight, release = await _started(flights, b"1")
    flight.begun = True  # the loader was called: its row may predate a write that bumped the generation since
    assert flights.joinable("k", b"1") is not None
    assert flights.joinable("k", b"2") is None
    assert flights.joinable("k", None) is None  # Redis not read: nothing shows the load is recent enough
    release.set()
    await flights.cancel_all()


async def test_a_begun_flight_without_generation_is_shared_by_no_one() -> None:
    flights = SingleFlight()
    flight, release = await _started(flights, None)
    flight.begun = True
    assert flights.joinable("k", None) is None and flights.joinable("k", b"") is None
    release.set()
    await flights.cancel_all()
