"""Which process runs what (statemgr.app.Role): built without I/O, so checked without any service running."""

from __future__ import annotations

from statemgr.app import App, Role
from statemgr.config import Settings

AMQP = "amqp://guest:guest@127.0.0.1:1/%2F"
ALL_DUTIES = {"event-relay", "event-pruner", "retention", "analytics-rollups"}


def test_a_worker_runs_no_background_duty_and_listens_for_its_subscribers() -> None:
    app = App.build(Settings(amqp_url=AMQP), Role.CALLS)
    assert app.background is None
    assert app.events.dispatcher is not None and app.events.listener.wanted


def test_the_background_process_relays_and_prunes_and_serves_no_stream() -> None:
    app = App.build(Settings(amqp_url=AMQP), Role.BACKGROUND)
    assert app.background is not None and set(app.background.duties) == ALL_DUTIES
    assert app.events.dispatcher is None
    assert app.events.listener.wanted  # the relay's wake-ups


def test_without_rabbitmq_there_is_no_relay_and_the_background_listens_for_the_rollup_consumer_alone() -> None:
    app = App.build(Settings(amqp_url=""), Role.BACKGROUND)
    assert app.background is not None and set(app.background.duties) == ALL_DUTIES - {"event-relay"}
    assert app.events.listener.wanted  # the rollup consumer folds when a commit is heard
    quiet = App.build(Settings(amqp_url="", analytics_enabled=False), Role.BACKGROUND)
    assert not quiet.events.listener.wanted


def test_one_process_can_do_everything() -> None:
    app = App.build(Settings(amqp_url=AMQP))
    assert app.background is not None and set(app.background.duties) == ALL_DUTIES
    assert app.events.dispatcher is not None


def test_the_rollup_consumer_can_be_switched_off() -> None:
    app = App.build(Settings(amqp_url="", analytics_enabled=False), Role.BACKGROUND)
    assert app.background is not None and set(app.background.duties) == {"event-pruner", "retention"}


def test_a_zero_retention_interval_leaves_the_job_to_the_operator() -> None:
    app = App.build(Settings(amqp_url="", retention_interval_seconds=0, analytics_enabled=False), Role.BACKGROUND)
    assert app.background is not None and set(app.background.duties) == {"event-pruner"}
