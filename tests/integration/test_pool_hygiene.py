"""A connection must come back to the pool fit for the next transaction, whatever the call that held it did."""

from __future__ import annotations

import uuid

from statemgr.store.db import Database


async def test_a_connection_left_in_pipeline_mode_is_not_handed_out_again(database_url: str) -> None:
    # One connection only: whatever the first holder leaves behind, the next transaction gets.
    db = Database(database_url, "statemgr_app", min_size=1, max_size=1)
    await db.open()
    try:
        async with db.connection() as conn:
            # What a call cancelled inside psycopg's pipeline exit leaves: libpq still in pipeline mode.
            conn.pgconn.enter_pipeline_mode()
        for _ in range(3):
            async with db.tenant(uuid.uuid4()) as conn:
                row = await (await conn.execute("SELECT current_user AS who")).fetchone()
            assert row == {"who": "statemgr_app"}
    finally:
        await db.close()


async def test_a_healthy_connection_is_kept(database_url: str) -> None:
    db = Database(database_url, "statemgr_app", min_size=1, max_size=1)
    await db.open()
    try:
        for _ in range(3):
            async with db.tenant(uuid.uuid4()) as conn:
                await conn.execute("SELECT 1")
        assert db.pool.get_stats().get("connections_num", 0) <= 1  # never reopened
    finally:
        await db.close()
