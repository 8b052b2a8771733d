from __future__ import annotations

import pytest

from statemgr import config


def test_defaults_work_on_a_developer_machine() -> None:
    settings = config.load({})
    assert settings.database_url == "postgresql://localhost/statemgr"
    assert settings.listen == "[::]:50051"
    assert settings.admin_key == ""


def test_environment_overrides_with_types() -> None:
    settings = config.load(
        {"STATEMGR_DB_POOL_MAX": "20", "STATEMGR_STREAMING_ENABLED": "false", "STATEMGR_AUTH_CACHE_SECONDS": "2.5"}
    )
    assert settings.db_pool_max == 20 and settings.streaming_enabled is False and settings.auth_cache_seconds == 2.5


def test_bad_number_names_the_variable() -> None:
    with pytest.raises(ValueError, match="STATEMGR_DB_POOL_MAX"):
        config.load({"STATEMGR_DB_POOL_MAX": "many"})


def test_the_direct_url_defaults_to_the_database_url() -> None:
    assert config.load({"STATEMGR_DATABASE_URL": "postgresql://pgb/x"}).direct_database_url == "postgresql://pgb/x"
    both = {"STATEMGR_DATABASE_URL": "postgresql://pgb/x", "STATEMGR_DATABASE_DIRECT_URL": "postgresql://pg/x"}
    assert config.load(both).direct_database_url == "postgresql://pg/x"
