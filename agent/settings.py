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

__all__ = ["OFFLINE_ENV", "Settings", "apply_offline_defaults", "get_settings"]

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
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        env_ignore_empty=True,
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
    log_format: str = Field(
        default="text",
        validation_alias="COPILOT_LOG_FORMAT",
        description="text, or json: one JSON object per line (time, level, logger, message, request_id) "
        "for a log collector; `copilot serve` and `copilot worker`.",
    )
    db_pool_size: int = Field(
        default=5,
        ge=1,
        le=200,
        validation_alias="COPILOT_DB_POOL_SIZE",
        description="PostgreSQL connections each process keeps open (SQLAlchemy pool_size); see docs/deploy.md.",
    )
    db_max_overflow: int = Field(
        default=10,
        ge=0,
        le=500,
        validation_alias="COPILOT_DB_MAX_OVERFLOW",
        description="Extra PostgreSQL connections a process may open at a peak, closed when returned.",
    )
    metrics_token: str = Field(
        default="",
        validation_alias="COPILOT_METRICS_TOKEN",
        repr=False,
        description="Bearer token a scraper sends for /metrics from another host; empty: /metrics "
        "answers loopback clients only.",
    )
    shutdown_grace_s: float = Field(
        default=30.0,
        gt=0,
        le=600,
        validation_alias="COPILOT_SHUTDOWN_GRACE_S",
        description="On SIGTERM, how long `copilot serve` lets in-flight requests finish before it stops.",
    )
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

    # --- the language model (agent/llm/): facts decide, the model only writes language -------
    llm_provider: str = Field(
        default="llamacpp",
        validation_alias="LLM_PROVIDER",
        description="llamacpp (a local GGUF model, the default), openai (any OpenAI-compatible "
        "server) or fake (scripted, deterministic; tests and evals).",
    )
    llm_model_path: Path | None = Field(
        default=None,
        validation_alias="LLM_MODEL_PATH",
        description="GGUF file for the llamacpp provider; empty means the pinned model assembled "
        "from its PyPI packages into <COPILOT_VAR_DIR>/models.",
    )
    llm_model: str = Field(
        default="gpt-4o-mini",
        validation_alias="LLM_MODEL",
        description="Model name for the openai provider (e.g. a vLLM or Ollama model id).",
    )
    openai_base_url: str = Field(
        default="",
        validation_alias="OPENAI_BASE_URL",
        description="OpenAI-compatible endpoint; empty means OpenAI itself.",
    )
    openai_api_key: str = Field(default="", validation_alias="OPENAI_API_KEY", repr=False)
    llm_timeout_s: float = Field(
        default=60.0,
        gt=0,
        validation_alias="LLM_TIMEOUT_S",
        description="Seconds one model call may take before the copilot falls back to fact-only text.",
    )
    llm_threads: int = Field(
        default=0,
        ge=0,
        validation_alias="LLM_THREADS",
        description="CPU threads for the llamacpp provider; 0 means all cores.",
    )
    llm_prompt_cache_mb: int = Field(
        default=384,
        ge=0,
        validation_alias="LLM_PROMPT_CACHE_MB",
        description="Memory for the llamacpp provider's saved prompt prefixes (KV cache); 0 turns it off.",
    )
    preexplain: int = Field(
        default=20,
        ge=0,
        validation_alias="COPILOT_PREEXPLAIN",
        description="copilot serve and copilot worker explain the orders of this many top open "
        "exceptions of the work queues ahead of time, while the model is idle, and store the text "
        "(a planner then gets it at once); 0 turns it off.",
    )

    # --- the service (ui/server.py) -----------------------------------------------------------------
    api_tokens: str = Field(
        default="",
        validation_alias="COPILOT_API_TOKENS",
        repr=False,
        description="Bearer tokens of the API and panel, 'token=username' pairs separated by commas; "
        "empty means the demo tokens in <COPILOT_VAR_DIR>/api_tokens.json (written by copilot demo).",
    )

    # --- events from ERP/WMS/TMS (POST /api/v1/events, the worker) ---------------------------------
    event_secrets: str = Field(
        default="",
        validation_alias="COPILOT_EVENT_SECRETS",
        repr=False,
        description="HMAC-SHA256 secret of each source system that may post events, 'source=secret' "
        "pairs separated by commas; a source without a secret is refused.",
    )
    event_window_s: int = Field(
        default=300,
        gt=0,
        validation_alias="COPILOT_EVENT_WINDOW_S",
        description="Seconds a signed event request's timestamp may differ from now; older or newer "
        "requests are refused as replays.",
    )
    event_worker: str = Field(
        default="auto",
        validation_alias="COPILOT_EVENT_WORKER",
        description="Whether copilot serve applies stored events itself: on, off, or auto (on for the "
        "embedded SQLite default; at scale run `copilot worker` processes instead).",
    )

    resume_after_s: float = Field(
        default=30.0,
        gt=0,
        validation_alias="COPILOT_RESUME_AFTER_S",
        description="Seconds an approved request may stay unexecuted (or a filed one unguarded) before "
        "any copilot serve or worker process carries it on: the process that had it died.",
    )

    autopilot: str = Field(
        default="on",
        validation_alias="COPILOT_AUTOPILOT",
        description="The kill switch of policy automation: off turns every auto-approval off at once.",
    )

    @field_validator("autopilot")
    @classmethod
    def _autopilot(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in {"on", "off"}:
            raise ValueError("COPILOT_AUTOPILOT must be on or off")
        return value

    @field_validator("event_secrets")
    @classmethod
    def _event_secrets(cls, value: str) -> str:
        # a pair that is not 'source=secret' would be dropped silently and every event of that source
        # refused as unsigned: say which pair (by position, never its text: it holds a secret)
        for n, pair in enumerate((p for p in value.split(",") if p.strip()), 1):
            name, sep, secret = pair.partition("=")
            if not sep or not name.strip() or not secret.strip():
                raise ValueError(f"pair {n} is not 'source=secret'")
        return value

    @field_validator("event_worker")
    @classmethod
    def _worker(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in {"auto", "on", "off"}:
            raise ValueError("COPILOT_EVENT_WORKER must be auto, on or off")
        return value

    def event_secret_map(self) -> dict[str, str]:
        """COPILOT_EVENT_SECRETS as source -> secret (names lower-cased, blanks ignored)."""
        pairs = (p.split("=", 1) for p in self.event_secrets.split(",") if "=" in p)
        return {k.strip().lower(): v.strip() for k, v in pairs if k.strip() and v.strip()}

    # --- trust: the audit key and the API's per-user limits -------------------------------------
    audit_key: str = Field(
        default="",
        validation_alias="COPILOT_AUDIT_KEY",
        repr=False,
        description="HMAC key of the audit chain (at least 32 characters), kept outside the database; "
        "empty means <COPILOT_VAR_DIR>/audit_key (written by copilot demo), else an unkeyed chain.",
    )
    api_rate_per_minute: int = Field(
        default=120,
        ge=1,
        validation_alias="COPILOT_API_RATE_PER_MINUTE",
        description="API requests one user may send per minute (429 with Retry-After beyond).",
    )
    api_model_rate_per_minute: int = Field(
        default=12,
        ge=1,
        validation_alias="COPILOT_API_MODEL_RATE_PER_MINUTE",
        description="API requests that may call the language model (chat, pasted text, triage with "
        "explain) one user may send per minute.",
    )

    # --- outgoing messages (agent/comms/delivery.py): customer notices and supplier requests -------
    outbox_transport: str = Field(
        default="eml",
        validation_alias="OUTBOX_TRANSPORT",
        description="eml (the default: each message written as <Message-ID>.eml into "
        "<COPILOT_VAR_DIR>/outbox/) or smtp (delivered to SMTP_HOST).",
    )
    smtp_host: str = Field(default="", validation_alias="SMTP_HOST", description="SMTP server host name.")
    smtp_port: int = Field(default=587, ge=1, le=65535, validation_alias="SMTP_PORT")
    smtp_tls: str = Field(
        default="starttls",
        validation_alias="SMTP_TLS",
        description="starttls (upgrade the connection, port 587), ssl (TLS from the start, port 465) "
        "or none (plain, e.g. a relay on localhost).",
    )
    smtp_username: str = Field(default="", validation_alias="SMTP_USERNAME", description="Empty: no login.")
    smtp_password: str = Field(default="", validation_alias="SMTP_PASSWORD", repr=False)
    smtp_from: str = Field(
        default="customer-service@northwind.example",
        validation_alias="SMTP_FROM",
        description="The sender address of customer notices and supplier requests.",
    )
    smtp_timeout_s: float = Field(default=30.0, gt=0, validation_alias="SMTP_TIMEOUT_S")
    outbox_max_attempts: int = Field(
        default=5,
        ge=1,
        validation_alias="OUTBOX_MAX_ATTEMPTS",
        description="Delivery attempts before a message is marked failed (a permanent refusal fails at once).",
    )
    outbox_backoff_s: float = Field(
        default=30.0,
        gt=0,
        validation_alias="OUTBOX_BACKOFF_S",
        description="Wait before the second attempt; it doubles with each further attempt (at most 1 hour).",
    )
    outbox_lease_s: float = Field(
        default=300.0,
        gt=0,
        validation_alias="OUTBOX_LEASE_S",
        description="How long a worker's claim on a message lasts; a message whose worker died is taken "
        "over after it (at once when that worker ran on this host).",
    )
    outbox_poll_s: float = Field(
        default=5.0,
        gt=0,
        validation_alias="OUTBOX_POLL_S",
        description="How often the worker inside `copilot serve` looks for due notices and approved messages.",
    )

    @field_validator("outbox_transport")
    @classmethod
    def _transport(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in {"eml", "smtp"}:
            raise ValueError("OUTBOX_TRANSPORT must be eml or smtp")
        return value

    @field_validator("smtp_tls")
    @classmethod
    def _tls(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in {"starttls", "ssl", "none"}:
            raise ValueError("SMTP_TLS must be starttls, ssl or none")
        return value

    @field_validator("llm_provider")
    @classmethod
    def _provider(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in {"llamacpp", "openai", "fake"}:
            raise ValueError("LLM_PROVIDER must be llamacpp, openai or fake")
        return value

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in {"text", "json"}:
            raise ValueError("COPILOT_LOG_FORMAT must be text or json")
        return value

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
