"""Process-wide settings: one typed object, read once from the environment and ``.env``.

Every variable is listed, with its default and meaning, in ``.env.example`` and the README.
Per-run context (who is asking, with which role) and graph state live elsewhere.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings", "apply_offline_defaults", "OFFLINE_ENV"]

# Switches that keep third-party libraries off the network. Applied (as defaults: an explicit
# environment value wins) before any of those libraries is imported.
OFFLINE_ENV: dict[str, str] = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "OTEL_SDK_DISABLED": "true",
    "LANGCHAIN_TRACING_V2": "false",
    "LANGSMITH_TRACING": "false",
    "DO_NOT_TRACK": "1",
}


def apply_offline_defaults() -> None:
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


class Settings(BaseSettings):
    """Configuration of one copilot process. Environment variable names are given per field."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    var_dir: Path = Field(
        default=Path("var"),
        validation_alias="COPILOT_VAR_DIR",
        description="Folder for local state: the SQLite database, checkpoints, the vector index.",
    )
    database_url: str = Field(
        default="",
        validation_alias="DATABASE_URL",
        description="SQLAlchemy URL of the ERP snapshot and the ops store; empty means "
        "sqlite:///<COPILOT_VAR_DIR>/copilot.db.",
    )
    log_level: str = Field(default="INFO", validation_alias="COPILOT_LOG_LEVEL")
    policy_path: Path | None = Field(
        default=None,
        validation_alias="COPILOT_POLICY",
        description="Policy file (thresholds, action catalog, approval matrix, decision order); "
        "empty means the shipped agent/policies/default.yaml.",
    )

    chroma_url: str = Field(
        default="",
        validation_alias="CHROMA_URL",
        description="Chroma server for the SOP index, e.g. http://chroma.internal:8000; empty means "
        "a local index in <COPILOT_VAR_DIR>/chroma.",
    )

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("COPILOT_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
        return value

    @property
    def effective_database_url(self) -> str:
        if self.database_url.strip():
            return self.database_url.strip()
        return f"sqlite:///{self.var_dir / 'copilot.db'}"


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
