"""Settings, read from ``AGENTOS_*`` environment variables and an optional ``.env``."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agentos import tasks

DEFAULT_DATABASE_URL = "sqlite:///./agentos.db"


class LlmPrice(BaseModel):
    """What one model costs per 1,000 tokens (in whatever currency the table uses)."""

    prompt: float = Field(ge=0)
    completion: float = Field(ge=0)


class Settings(BaseSettings):
    """Every knob of a server, worker or CLI process."""

    model_config = SettingsConfigDict(
        env_prefix="AGENTOS_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = DEFAULT_DATABASE_URL
    # None: upgrade SQLite automatically, refuse to touch PostgreSQL (one
    # server of many must not migrate under the others' feet).
    auto_upgrade: bool | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # the server the CLI and the SDK talk to
    url: str = "http://127.0.0.1:8000"
    token: str | None = None  # bearer credential the CLI and SDK send
    # access: the first admin's password (else a random one, printed once), login
    # token lifetime, how long a server trusts a verified credential before
    # looking again (the bound on a revocation another server missed), failed logins
    admin_password: SecretStr | None = None
    token_ttl_s: float = Field(default=12 * 3600, gt=0)
    auth_cache_s: float = Field(default=5.0, ge=0)
    login_max_failures: int = Field(default=10, ge=1)
    login_lockout_s: float = Field(default=300.0, ge=0)
    login_max_delay_s: float = Field(default=2.0, ge=0)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: comma-separated
    # addresses or networks (10.0.0.0/8); empty: none, the peer is the client
    trusted_proxies: str = ""
    db_pool_size: int = Field(default=20, ge=1)
    # events
    event_max_payload_bytes: int = Field(default=1024 * 1024, ge=1)
    # background loops of `agentos serve` (router, scheduler); off for pure API nodes
    run_router: bool = True
    run_scheduler: bool = True
    # run a worker inside the server process (the demo does; production runs `agentos worker`)
    run_worker: bool = False
    worker_concurrency: int = Field(default=tasks.DEFAULT_CONCURRENCY, ge=1)
    # locks: the longest lease and long-poll wait an acquire may ask for
    lock_max_ttl_s: float = Field(default=3600.0, gt=0)
    lock_max_wait_s: float = Field(default=300.0, ge=0)
    # handlers: hosts `http` handlers may call, comma-separated host, host:port or
    # *.domain; empty allows none
    http_allow: str = ""
    # `llm` handlers: an OpenAI-compatible API, e.g. https://api.openai.com/v1
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    # cost per model, as JSON: {"gpt-4o-mini": {"prompt": 0.00015, "completion": 0.0006}}
    llm_prices: dict[str, LlmPrice] = Field(default_factory=dict)
    # the cache of hot reads (agent definitions, deployed models, ...): off only to
    # measure it; entries live this long at most (None: 1 s, or 60 s while NOTIFY or
    # Redis carry other processes' changes); Redis pub/sub for those changes
    cache_enabled: bool = True
    cache_ttl_s: float | None = Field(default=None, ge=0)
    redis_url: str | None = None
    # model registry: deploying a version archives the one deployed before (replace), or
    # several versions of a model may be deployed at once (many)
    model_deploy_policy: Literal["replace", "many"] = "replace"
    # read models: keep them up to date in this server, and the installation's own
    # (module:attr, comma-separated) beside the built-ins
    run_projections: bool = True
    projections: str | None = None
    # workflows: move runs on in this server (the log's consumer and the timer); the
    # largest artifact a step may store (bytes of data, or of JSON text)
    run_workflows: bool = True
    artifact_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    # task logs: what one attempt keeps of the lines its handler writes (ctx.log); the
    # first line past either bound says the log was truncated, later ones are dropped
    task_log_max_lines: int = Field(default=1000, ge=1, le=1_000_000)
    task_log_max_bytes: int = Field(default=256 * 1024, ge=1024, le=1024 * 1024 * 1024)
    # days an ended task's log lines are kept (the server deletes older ones every 10
    # minutes); 0 keeps them as long as their task
    task_log_retention_days: float = Field(default=30.0, ge=0, le=36500)
    # knowledge base: the largest document (title + content + metadata, bytes of UTF-8)
    knowledge_max_bytes: int = Field(default=512 * 1024, ge=1024)
    # optional vector search: an OpenAI-compatible embeddings API, e.g.
    # https://api.openai.com/v1 (POST {url}/embeddings); unset: text search only
    embeddings_url: str | None = None
    embeddings_api_key: SecretStr | None = None
    embeddings_model: str = "text-embedding-3-small"

    # metrics: keep the automatic metrics and the flush of this process's samples going
    # (a server); how long each resolution of the rollups is kept
    run_metrics: bool = True
    metrics_retention_1m_days: float = Field(default=7.0, gt=0, le=3650)
    metrics_retention_1h_days: float = Field(default=90.0, gt=0, le=36500)
    # traces: an OTLP/HTTP collector (http://host:4318); unset: no spans, no cost
    otlp_endpoint: str | None = None

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, v: str) -> str:
        for item in proxy_list(v):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an address or a network "
                                 "(like 10.0.0.1 or 10.0.0.0/8)") from None
        return v

    def should_auto_upgrade(self) -> bool:
        if self.auto_upgrade is not None:
            return self.auto_upgrade
        # by default only SQLite's: its file belongs to one installation
        return not self.database_url.startswith("postgres")


def proxy_list(value: str) -> list[str]:
    """AGENTOS_TRUSTED_PROXIES as a list of addresses and networks."""
    return [item.strip() for item in value.split(",") if item.strip()]
