from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.settings import Settings, get_settings


def test_default_database_is_a_sqlite_file_under_the_var_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("COPILOT_VAR_DIR", str(tmp_path / "state"))
    assert get_settings().effective_database_url == f"sqlite:///{tmp_path / 'state' / 'copilot.db'}"


def test_environment_and_dotenv(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("DATABASE_URL=postgresql://u@h/db\nCOPILOT_LOG_LEVEL=debug\n")
    s = Settings()
    assert s.effective_database_url == "postgresql://u@h/db" and s.log_level == "DEBUG"
    monkeypatch.setenv("DATABASE_URL", "sqlite:///x.db")
    assert Settings().effective_database_url == "sqlite:///x.db"


def test_bad_log_level_is_refused(monkeypatch):
    monkeypatch.setenv("COPILOT_LOG_LEVEL", "chatty")
    with pytest.raises(ValidationError, match="COPILOT_LOG_LEVEL"):
        Settings()
