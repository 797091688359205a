"""The schema: the single source of truth that migrations must reproduce.

Each concept's tables live here together so one test can compare a migrated
database with this metadata; each concept's queries live with the concept.
"""

from __future__ import annotations

from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from agentos.store.columns import Id, Json, UTCDateTime, binary_string, utcnow

# constraint names that are the same on both backends and stable for migrations
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# ---------------------------------------------------------------- registry

agent_versions = Table(
    "agent_versions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(63), nullable=False),
    Column("version", String(128), nullable=False),
    # semver precedence as a byte-ordered string (agentos.semver.sort_key)
    Column("sort_key", binary_string(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("display_name", String(200)),
    Column("description", Text),
    Column("role", Text),
    Column("owner", String(200)),
    Column("definition", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
    Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
    Column("published_at", UTCDateTime),
    UniqueConstraint("name", "version"),
    CheckConstraint(
        "status IN ('draft', 'published', 'deprecated', 'archived')", name="status"
    ),
    Index(None, "name", "status", "sort_key"),
    Index(None, "status"),
)

# search side tables: one row per tag / capability / trigger of a version
agent_tags = Table(
    "agent_tags",
    metadata,
    Column("agent_version_id", Id, ForeignKey("agent_versions.id", ondelete="CASCADE"),
           primary_key=True),
    Column("tag", String(64), primary_key=True),
    Index(None, "tag"),
)

agent_capabilities = Table(
    "agent_capabilities",
    metadata,
    Column("agent_version_id", Id, ForeignKey("agent_versions.id", ondelete="CASCADE"),
           primary_key=True),
    Column("name", String(63), primary_key=True),
    Column("version", String(64), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Index(None, "name"),
)

agent_triggers = Table(
    "agent_triggers",
    metadata,
    Column("agent_version_id", Id, ForeignKey("agent_versions.id", ondelete="CASCADE"),
           primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("event_glob", String(255), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("filter", Json, nullable=False),
    Column("capability", String(63)),
)

# ------------------------------------------------------------------ events

# The log. ``seq`` comes from event_log_head on SQLite (its one writer numbers them) and
# from the sequence events_seq on PostgreSQL (migration 0010), where readers stop below
# the lowest number an unfinished append may take (events.horizon): no tailer skips one.
events = Table(
    "events",
    metadata,
    Column("seq", Id, primary_key=True, autoincrement=False),
    Column("id", String(36), nullable=False, unique=True),
    Column("type", binary_string(255), nullable=False),
    Column("source", String(255), nullable=False),
    Column("payload", Json, nullable=False),
    Column("priority", SmallInteger, nullable=False),
    Column("correlation_id", String(64), nullable=False),
    Column("causation_id", String(64)),
    Column("run_id", String(64)),
    Column("subject", String(255)),
    Column("dedup_key", String(255)),
    Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
    # every index costs each append a B-tree write: optional columns get
    # partial ones; retention scans created_at instead of indexing it
    Index(None, "correlation_id", "seq"),
    Index(None, "type", "seq"),
    Index(None, "source", "seq"),  # a source's events in order (a rare one read the log)
    Index(None, "run_id", "seq", sqlite_where=text("run_id IS NOT NULL"),
          postgresql_where=text("run_id IS NOT NULL")),
    Index(None, "dedup_key", unique=True, sqlite_where=text("dedup_key IS NOT NULL"),
          postgresql_where=text("dedup_key IS NOT NULL")),
)

# one row: the last sequence number handed out (SQLite); on PostgreSQL the lock that
# serializes appends with dedup keys
event_log_head = Table(
    "event_log_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", Id, nullable=False),
)

# events not routed yet; the router takes the most urgent first
route_queue = Table(
    "route_queue",
    metadata,
    # one B-tree in urgency order: the queue costs each append a single insert
    Column("rank", SmallInteger, primary_key=True, autoincrement=False),  # 0 = critical
    Column("seq", Id, primary_key=True, autoincrement=False),
    sqlite_with_rowid=False,
)

# the event types the triggers of published agent versions name, as LIKE patterns: an
# append queues an event for routing only when one of them may match its type
# (sql/routable.sql); rewritten by every change to what is published (routes.refresh_patterns)
route_patterns = Table(
    "route_patterns",
    metadata,
    Column("type_like", binary_string(512), primary_key=True),
    sqlite_with_rowid=False,
)

# one row per (event, agent, trigger) that matched: never two
routes = Table(
    "routes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_seq", Id, ForeignKey("events.seq", ondelete="CASCADE"), nullable=False),
    Column("agent", String(63), nullable=False),
    Column("agent_version", String(128), nullable=False),
    Column("trigger_index", Integer, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("task_id", String(36)),
    # a trigger the event matched that did not fire: why (a capability switched off); no task
    Column("skipped", String(200)),
    Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
    UniqueConstraint("event_seq", "agent", "trigger_index"),
)

# named durable subscriptions: a type glob and a cursor acknowledged by the consumer
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("type_glob", String(255), nullable=False),
    Column("cursor_seq", Id, nullable=False),
    Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
    Column("acked_at", UTCDateTime),
)

# --------------------------------------------------------------- schedules

schedules = Table(
    "schedules",
    metadata,
    Column("name", String(63), primary_key=True),
    Column("kind", String(8), nullable=False),  # cron | interval | once
    Column("cron", String(255)),
    Column("timezone", String(64)),
    Column("interval_s", Float),
    Column("run_at", UTCDateTime),
    # what each tick fires: an event (type, payload, priority), a task, or both
    Column("event_type", String(255)),
    Column("payload", Json),
    Column("priority", SmallInteger),
    Column("task", Json),  # a tasks.TaskTemplate
    Column("misfire", String(8), nullable=False),  # skip | once
    Column("paused", Boolean, nullable=False),
    Column("next_run_at", UTCDateTime),
    Column("last_run_at", UTCDateTime),
    Column("last_event_id", String(36)),
    Column("last_task_id", String(36)),
    Column("last_error", Json),  # why the last tick could not submit its task
    Column("fire_count", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
    Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
    CheckConstraint("kind IN ('cron', 'interval', 'once')", name="kind"),
    CheckConstraint("misfire IN ('skip', 'once')", name="misfire"),
    CheckConstraint("event_type IS NOT NULL OR task IS NOT NULL", name="fires"),
    Index(None, "next_run_at"),
)

# one row per tick a schedule fired, written in the firing transaction; the newest
# schedule_fires.KEEP per schedule are kept, and a schedule's go with it
schedule_fires = Table(
    "schedule_fires",
    metadata,
    Column("id", String(36), primary_key=True),  # UUIDv7: newest first by id
    Column("schedule", String(63), ForeignKey("schedules.name", ondelete="CASCADE"),
           nullable=False),
    Column("scheduled_for", UTCDateTime, nullable=False),  # the tick
    Column("fired_at", UTCDateTime, nullable=False),  # the database's clock
    Column("catch_up", Boolean, nullable=False),  # fired late, for a missed tick
    Column("missed", Integer, nullable=False),  # ticks passed over without a fire
    Column("event_id", String(36)),
    Column("task_id", String(36)),
    Column("error", Json),  # why its task could not be submitted
    UniqueConstraint("schedule", "scheduled_for"),  # each tick once
    Index(None, "schedule", "id"),  # a schedule's fires, newest first
)

# ------------------------------------------------------------------- tasks

tasks = Table(
    "tasks",
    metadata,
    # arrival order (FIFO within a priority); SQLite's rowid, a sequence on PostgreSQL
    Column("seq", Id, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("agent", String(63), nullable=False),
    Column("agent_version", String(128), nullable=False),
    Column("input", Json, nullable=False),
    Column("priority", SmallInteger, nullable=False),  # 1..10, 10 first
    Column("status", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),  # the current (or last) attempt's number
    Column("retry_base", Integer, nullable=False),  # attempts before the last operator retry
    Column("max_retries", Integer, nullable=False),
    Column("timeout_s", Float, nullable=False),
    Column("run_at", UTCDateTime, nullable=False),
    Column("lease_expires_at", UTCDateTime),
    Column("worker_id", String(128)),
    # when the current (or last) attempt started: a running attempt lives on this row,
    # and its execution record (task_attempts) is written when it ends
    Column("started_at", UTCDateTime),
    Column("cancel_requested", Boolean, nullable=False),
    Column("idempotency_key", String(255)),
    Column("correlation_id", String(64), nullable=False),
    Column("causation_id", String(64)),
    Column("output", Json),
    Column("error", Json),
    Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
    Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
    Column("finished_at", UTCDateTime),
    # a capability of the agent the task needs: while it is switched off the task waits
    # (held_agents), and runs when it is switched on again
    Column("capability", String(63)),
    # what kind of work it is (execute, train, analyze, ...) and the producer's own
    # labels: shown and filtered on, never read by the queue
    Column("type", String(63)),
    Column("metadata", Json),
    CheckConstraint("status IN ('pending', 'scheduled', 'running', 'succeeded', 'failed', "
                    "'cancelled')", name="status"),
    CheckConstraint("priority BETWEEN 1 AND 10", name="priority"),
    Index(None, "run_at", sqlite_where=text("status = 'scheduled'"),
          postgresql_where=text("status = 'scheduled'")),
    Index(None, "lease_expires_at", sqlite_where=text("status = 'running'"),
          postgresql_where=text("status = 'running'")),
    Index(None, "agent", "status"),
    Index(None, "correlation_id"),
    Index(None, "idempotency_key", unique=True, sqlite_where=text("idempotency_key IS NOT NULL"),
          postgresql_where=text("idempotency_key IS NOT NULL")),
)

# the claim indexes: ready tasks in claim order (most urgent first, then oldest), so a
# claim reads the first few entries instead of sorting every pending task; one for
# workers that serve every agent, one for workers that name theirs
Index("ix_tasks_claim_order", tasks.c.priority.desc(), tasks.c.seq,
      sqlite_where=text("status = 'pending'"), postgresql_where=text("status = 'pending'"))
Index("ix_tasks_agent_claim_order", tasks.c.agent, tasks.c.priority.desc(), tasks.c.seq,
      sqlite_where=text("status = 'pending'"), postgresql_where=text("status = 'pending'"))
# the lists' order within a status or an agent (newest or oldest first), read in order
# whatever its share of the table: a rare status's or agent's page read the whole table
Index("ix_tasks_status_seq", tasks.c.status, tasks.c.seq)
Index("ix_tasks_agent_seq", tasks.c.agent, tasks.c.seq)
# a type's tasks in order; tasks without a type (most) cost it nothing
Index("ix_tasks_type_seq", tasks.c.type, tasks.c.seq, sqlite_where=text("type IS NOT NULL"),
      postgresql_where=text("type IS NOT NULL"))

# one row per ended attempt: the execution record (the running one is on its task's row)
task_attempts = Table(
    "task_attempts",
    metadata,
    Column("task_id", String(36), ForeignKey("tasks.id", ondelete="CASCADE"),
           primary_key=True),
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("worker_id", String(128), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Column("duration_ms", Float),
    Column("error", Json),
    Column("tokens", Json),
    Column("cost", Float),
)

# the lines a handler writes with ctx.log (and a remote worker sends), per attempt and
# numbered within it; bounded per attempt by the writer (a "truncated" line says so), and
# deleted with their task
task_logs = Table(
    "task_logs",
    metadata,
    Column("task_id", String(36), ForeignKey("tasks.id", ondelete="CASCADE"),
           primary_key=True),
    Column("attempt", Integer, primary_key=True, autoincrement=False),
    Column("line", Integer, primary_key=True, autoincrement=False),  # 1, 2, ... per attempt
    Column("at", UTCDateTime, nullable=False),  # the writer's clock
    Column("level", String(16), nullable=False),  # debug .. critical, stderr, truncated
    Column("message", Text, nullable=False),
    Index(None, "at"),  # retention: the oldest lines first
)

# worker instances: registered at start, heartbeating while they run
workers = Table(
    "workers",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("agents", Json),  # null: every agent
    Column("concurrency", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # idle | busy | stopped
    Column("running", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_heartbeat_at", UTCDateTime, nullable=False),
    Column("stopped_at", UTCDateTime),
    Column("unloadable", Json),  # {agent: why its handler cannot be loaded here}
)

# ------------------------------------------------------------------ access

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(63), nullable=False, unique=True),
    Column("email", String(255)),
    Column("role", String(16), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("password_hash", String(255), nullable=False),  # argon2id, PHC string
    Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
    Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
    Column("last_login_at", UTCDateTime),
    Column("password_changed_at", UTCDateTime, nullable=False, server_default=utcnow()),
    CheckConstraint("role IN ('admin', 'operator', 'viewer')", name="role"),
)

# login tokens (kind 'session', a user's) and API keys (kind 'api_key', a role's):
# only a SHA-256 of the secret is kept; resolving a bearer is one unique-index lookup
credentials = Table(
    "credentials",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("secret_hash", binary_string(64), nullable=False, unique=True),
    Column("prefix", String(16)),  # an API key's visible part, e.g. aok_1a2b3c4d
    Column("name", String(100)),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE")),
    Column("role", String(16)),  # an API key's role; a session has its user's
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
    Column("expires_at", UTCDateTime),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    CheckConstraint("kind IN ('session', 'api_key')", name="kind"),
    Index(None, "user_id"),
    Index(None, "kind", "created_at"),
)

# failed logins per user ("user:NAME") and per address ("ip:ADDR")
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(320), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failed_at", UTCDateTime, nullable=False),
    Column("locked_until", UTCDateTime),
)

# the audit log: append-only, each row carrying the hash of the one before
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Id, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),  # user:NAME, key:PREFIX, anonymous
    Column("actor_role", String(16)),
    Column("action", String(100), nullable=False),  # e.g. tasks.cancel
    Column("outcome", String(8), nullable=False),
    Column("resource_type", String(63), nullable=False),
    Column("resource_id", String(255)),
    Column("details", Json, nullable=False),
    Column("ip", String(64)),
    Column("user_agent", String(512)),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    CheckConstraint("outcome IN ('ok', 'denied')", name="outcome"),
    Index(None, "actor", "seq"),
    Index(None, "action", "seq"),
    Index(None, "resource_type", "resource_id", "seq"),
    Index(None, "at"),
)

# one row: the chain's end. Appending locks it (held to commit), so two servers
# never chain two rows to the same predecessor; prev_hash is the appender's scratch
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", Id, nullable=False),
    Column("last_hash", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=False),
)


# ------------------------------------------------------------------- locks

# One row per resource ever locked; it stays after release so ``token`` (the
# last fencing token handed out) keeps growing across grants and restarts.
locks = Table(
    "locks",
    metadata,
    Column("resource", binary_string(264), primary_key=True),  # TYPE:NAME
    Column("type", String(63), nullable=False),
    Column("token", BigInteger, nullable=False),
    # the holder; all null while the lock is free
    Column("owner", String(255)),
    Column("priority", SmallInteger),
    Column("acquired_at", UTCDateTime),
    Column("expires_at", UTCDateTime),
    Column("metadata", Json),
    Column("task_id", String(36)),  # held for a task attempt (declared resources, ctx.lock)
    Column("agent", String(63)),
    Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
    # a waiter may be queued: set by every waiter that joins (holding this row), and
    # reset to whether entries remain (live or lapsed) by every change that frees the
    # lock; while it is false a release frees the lock without looking at the queue
    # (locks_release; SQLite's hand-over)
    Column("queued", Boolean, nullable=False, server_default=false()),
    Index(None, "expires_at", sqlite_where=text("owner IS NOT NULL"),
          postgresql_where=text("owner IS NOT NULL")),
    Index(None, "owner", sqlite_where=text("owner IS NOT NULL"),
          postgresql_where=text("owner IS NOT NULL")),
    Index(None, "task_id", sqlite_where=text("task_id IS NOT NULL"),
          postgresql_where=text("task_id IS NOT NULL")),
    Index(None, "type"),
)

# the wait queue: durable, so a long-polling waiter keeps its place across a
# server restart; served by priority (higher first), then arrival (id)
lock_waiters = Table(
    "lock_waiters",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("resource", binary_string(264), nullable=False),
    Column("owner", String(255), nullable=False),
    Column("priority", SmallInteger, nullable=False),
    Column("ttl_s", Float, nullable=False),  # the lease it gets when granted
    Column("metadata", Json),
    Column("task_id", String(36)),
    Column("agent", String(63)),
    Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
    # a waiter whose wait ended (or whose client vanished) leaves the queue here
    Column("expires_at", UTCDateTime, nullable=False),
    UniqueConstraint("resource", "owner"),
    Index(None, "resource", "priority", "id"),
    Index(None, "owner"),
    Index(None, "expires_at"),
    # an entry's id is never reused (a grant's notification names it): SQLite's
    # AUTOINCREMENT, PostgreSQL's sequence
    sqlite_autoincrement=True,
)


# --------------------------------------------------------------- knowledge

# Documents agents and people write and search. Full-text search needs what SQLAlchemy
# cannot describe, made by migration 0012 and listed in UNMODELLED: on SQLite the FTS5
# table knowledge_fts (external content: this table's title and content, kept in step
# by triggers), on PostgreSQL the generated tsvector column ``search`` and its GIN index.
knowledge_documents = Table(
    "knowledge_documents",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("namespace", binary_string(64), nullable=False),
    Column("key", binary_string(255), nullable=False),
    Column("title", String(500), nullable=False),
    Column("content", Text, nullable=False),
    Column("tags", Json, nullable=False),
    Column("metadata", Json, nullable=False),
    # a unit-length embedding of title and content (float32 bytes on SQLite, real[] on
    # PostgreSQL), and the model that made it: vectors of different models never meet
    Column("embedding", LargeBinary().with_variant(ARRAY(REAL()), "postgresql")),
    Column("embedding_model", String(200)),
    Column("created_by", String(200), nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
    Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
    UniqueConstraint("namespace", "key"),
)

knowledge_tags = Table(
    "knowledge_tags",
    metadata,
    Column("document_id", Id, ForeignKey("knowledge_documents.id", ondelete="CASCADE"),
           primary_key=True),
    Column("tag", String(64), primary_key=True),
    Index(None, "tag", "document_id"),
)

# ---------------------------------------------------------- model registry

# ML models, one row per (name, version): status training -> deployed -> archived
models = Table(
    "models",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(63), nullable=False),
    Column("version", String(64), nullable=False),
    Column("type", String(63), nullable=False),
    Column("framework", String(63)),
    Column("description", Text),
    Column("metrics", Json, nullable=False),
    Column("config", Json, nullable=False),
    Column("artifact_uri", String(2048)),
    Column("status", String(16), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
    Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
    Column("deployed_at", UTCDateTime),
    Column("archived_at", UTCDateTime),
    UniqueConstraint("name", "version"),
    CheckConstraint("status IN ('training', 'deployed', 'archived')", name="status"),
    Index(None, "name", "status"),
)


# ------------------------------------------------------- log consumers

# A consumer of the event log (a projection, a workflow engine's reader) and how far it
# has applied it: each batch of events is applied in the transaction that moves
# ``cursor_seq``. A reset (a rebuild) puts the cursor back to 0 and notes the log's head
# then (``rebuild_target``), cleared once the consumer has caught up with it.
consumers = Table(
    "consumers",
    metadata,
    Column("name", String(127), primary_key=True),
    Column("cursor_seq", Id, nullable=False),
    Column("applied", BigInteger, nullable=False),  # events applied since the last reset
    Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
    Column("rebuild_started_at", UTCDateTime),
    Column("rebuild_target", Id),
)

# The JSON state of projections that keep one: a value per (projection, key)
projection_state = Table(
    "projection_state",
    metadata,
    Column("projection", String(63), primary_key=True),
    Column("key", binary_string(255), primary_key=True),
    Column("value", Json, nullable=False),
)


# ------------------------------------------------------------- operating

# Live config of an agent: a value per declared key that overrides the definition's
# default for every version, until cleared (agentos.agent_config)
agent_config = Table(
    "agent_config",
    metadata,
    Column("agent", String(63), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", Json, nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
)

# A capability switched off (or on again) live, over what the definition says
capability_switches = Table(
    "capability_switches",
    metadata,
    Column("agent", String(63), primary_key=True),
    Column("capability", String(63), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("reason", String(500), nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
)

# Agents whose tasks no claim takes for now, and why: a hard budget spent (until its
# period rolls, or it is raised), a capability switched off (the tasks that need it)
held_agents = Table(
    "held_agents",
    metadata,
    Column("agent", String(63), primary_key=True),
    Column("reason", String(16), primary_key=True),  # budget | capability
    Column("ref", String(200), primary_key=True),  # the budget's id, the capability
    Column("until", UTCDateTime),  # null: until someone changes it
    Column("detail", Json, nullable=False),
    Column("since", UTCDateTime, nullable=False, server_default=utcnow()),
    CheckConstraint("reason IN ('budget', 'capability')", name="reason"),
)

# Every LLM call made through AgentOS (the llm handler, ctx.llm, remote workers)
llm_calls = Table(
    "llm_calls",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),  # when it started
    Column("provider", String(63), nullable=False),
    Column("model", String(200), nullable=False),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    Column("cost", Float),  # null: no price known for the model
    Column("latency_ms", Float, nullable=False),
    Column("outcome", String(16), nullable=False),  # ok | error | refused
    Column("error", String(1000)),
    Column("agent", String(63)),
    Column("task_id", String(36)),
    Column("attempt", Integer),
    Column("correlation_id", String(64)),
    Column("recorded_by", String(200), nullable=False),
    CheckConstraint("outcome IN ('ok', 'error', 'refused')", name="outcome"),
    Index(None, "at"),
    Index(None, "agent", "at"),
    Index(None, "model", "at"),
    Index(None, "task_id"),
)

# Metrics: one row per series (name + tags), and its time-bucketed rollups at each
# resolution (seconds), never one row per sample. A histogram's samples are counted in
# fixed log-scale buckets (agentos.metrics.buckets), so percentiles over any range come
# from the sum of its rollups' bucket counts.
metric_series = Table(
    "metric_series",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # counter | gauge | histogram
    Column("tags", Json, nullable=False),
    Column("tags_key", binary_string(1000), nullable=False),  # canonical k=v,... text
    Column("agent", String(63)),  # its agent tag, for deleting an agent's metrics
    Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
    # lifetime totals (what /metrics exposes: counters never go down with retention)
    Column("total_count", BigInteger, nullable=False, server_default=text("0")),
    Column("total_sum", Float, nullable=False, server_default=text("0")),
    Column("last_value", Float),  # a gauge's latest value
    Column("last_at", BigInteger),  # epoch s of it
    UniqueConstraint("name", "tags_key"),
    CheckConstraint("kind IN ('counter', 'gauge', 'histogram')", name="kind"),
    Index(None, "agent", sqlite_where=text("agent IS NOT NULL"),
          postgresql_where=text("agent IS NOT NULL")),
)

metric_rollups = Table(
    "metric_rollups",
    metadata,
    Column("series_id", Id, ForeignKey("metric_series.id", ondelete="CASCADE"),
           primary_key=True),
    Column("resolution", Integer, primary_key=True, autoincrement=False),  # seconds
    Column("bucket", BigInteger, primary_key=True, autoincrement=False),  # epoch s, start
    Column("count", BigInteger, nullable=False),
    Column("sum", Float, nullable=False),
    Column("min", Float, nullable=False),
    Column("max", Float, nullable=False),
    Column("last", Float, nullable=False),  # a gauge's latest value
    Index(None, "resolution", "bucket"),
)

metric_histograms = Table(
    "metric_histograms",
    metadata,
    Column("series_id", Id, ForeignKey("metric_series.id", ondelete="CASCADE"),
           primary_key=True),
    Column("resolution", Integer, primary_key=True, autoincrement=False),
    Column("bucket", BigInteger, primary_key=True, autoincrement=False),
    Column("idx", SmallInteger, primary_key=True, autoincrement=False),
    Column("count", BigInteger, nullable=False),
    Index(None, "resolution", "bucket"),
)

# Token or cost budgets per agent, per model, or global, per day or month (UTC)
budgets = Table(
    "budgets",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("scope", String(8), nullable=False),  # agent | model | global
    Column("target", String(200), nullable=False),  # '' for global
    Column("metric", String(8), nullable=False),  # tokens | cost
    Column("period", String(8), nullable=False),  # day | month
    Column("limit_value", Float, nullable=False),
    Column("hard", Boolean, nullable=False),  # hold tasks and refuse calls when spent
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
    Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
    UniqueConstraint("scope", "target", "metric", "period"),
    CheckConstraint("scope IN ('agent', 'model', 'global')", name="scope"),
    CheckConstraint("metric IN ('tokens', 'cost')", name="metric"),
    CheckConstraint("period IN ('day', 'month')", name="period"),
)

# What each budget's current (and past) periods spent, kept as calls are recorded
budget_usage = Table(
    "budget_usage",
    metadata,
    Column("budget_id", Id, ForeignKey("budgets.id", ondelete="CASCADE"), primary_key=True),
    Column("period_start", UTCDateTime, primary_key=True),
    Column("used", Float, nullable=False),
    Column("warned", Boolean, nullable=False),  # budget.warning appended (80 %)
    Column("exceeded", Boolean, nullable=False),  # budget.exceeded appended (100 %)
)


# --------------------------------------------------------------- workflows

# versions of workflow definitions, with the agents' lifecycle (agentos.lifecycle)
workflow_versions = Table(
    "workflow_versions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(63), nullable=False),
    Column("version", String(128), nullable=False),
    Column("sort_key", binary_string(200), nullable=False),  # agentos.semver.sort_key
    Column("status", String(16), nullable=False),
    Column("description", Text),
    Column("definition", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
    Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
    Column("published_at", UTCDateTime),
    UniqueConstraint("name", "version"),
    CheckConstraint(
        "status IN ('draft', 'published', 'deprecated', 'archived')", name="status"
    ),
    Index(None, "name", "status", "sort_key"),
)

# one row per run; ids are UUIDv7, so their order is the order runs started in
workflow_runs = Table(
    "workflow_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("workflow", String(63), nullable=False),
    Column("version", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("input", Json, nullable=False),
    Column("output", Json),
    Column("error", Json),
    Column("priority", SmallInteger, nullable=False),
    Column("correlation_id", String(64), nullable=False),
    Column("idempotency_key", String(255)),
    # a sub-run: the run and step waiting for it
    Column("parent_run_id", String(36)),
    Column("parent_step", String(63)),
    Column("depth", SmallInteger, nullable=False),  # sub-runs above it
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
    Column("updated_at", UTCDateTime, nullable=False, server_default=utcnow()),
    Column("finished_at", UTCDateTime),
    CheckConstraint("status IN ('running', 'succeeded', 'failed', 'cancelled')",
                    name="status"),
    Index(None, "workflow", "id"),
    Index(None, "status", "id"),
    Index(None, "correlation_id"),
    Index(None, "parent_run_id", sqlite_where=text("parent_run_id IS NOT NULL"),
          postgresql_where=text("parent_run_id IS NOT NULL")),
    Index(None, "idempotency_key", unique=True, sqlite_where=text("idempotency_key IS NOT NULL"),
          postgresql_where=text("idempotency_key IS NOT NULL")),
)

# each step of each run: its state now (its history is workflow_transitions)
workflow_steps = Table(
    "workflow_steps",
    metadata,
    Column("run_id", String(36), ForeignKey("workflow_runs.id", ondelete="CASCADE"),
           primary_key=True),
    Column("step", String(63), primary_key=True),
    Column("kind", String(16), nullable=False),  # agent | approval | wait_event | workflow
    Column("status", String(16), nullable=False),
    Column("round", Integer, nullable=False),  # 1, and one more for every rerun of it
    Column("items", Json),  # a fan-out's items, in order
    # a fan-out's children: submitted so far (items[:started]), ended, failed
    Column("items_started", Integer),
    Column("items_ended", Integer),
    Column("items_failed", Integer),
    Column("output", Json),
    Column("error", Json),
    Column("approval_id", String(36)),
    Column("sub_run_id", String(36)),
    Column("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    CheckConstraint("status IN ('pending', 'running', 'succeeded', 'failed', 'skipped', "
                    "'cancelled')", name="status"),
)

# which task runs which step (and fan-out item) of which round: written in the
# transaction that submits the task, read when its task.* end event arrives
workflow_step_tasks = Table(
    "workflow_step_tasks",
    metadata,
    Column("task_id", String(36), primary_key=True),
    Column("run_id", String(36), ForeignKey("workflow_runs.id", ondelete="CASCADE"),
           nullable=False),
    Column("step", String(63), nullable=False),
    Column("round", Integer, nullable=False),
    Column("item", Integer, nullable=False),  # 0 for a step without for_each
    Column("status", String(16), nullable=False),  # running, then how its task ended
    Column("output", Json),
    Column("error", Json),
    UniqueConstraint("run_id", "step", "round", "item"),
)

# every state change of a run and of its steps (step NULL: the run's own)
workflow_transitions = Table(
    "workflow_transitions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", String(36), ForeignKey("workflow_runs.id", ondelete="CASCADE"),
           nullable=False),
    Column("step", String(63)),
    Column("from_status", String(16)),
    Column("to_status", String(16), nullable=False),
    Column("reason", Text),
    Column("at", UTCDateTime, nullable=False, server_default=utcnow()),
    Index(None, "run_id", "id"),
)

# wait_event steps waiting now: events after ``after_seq`` that match end them
workflow_waits = Table(
    "workflow_waits",
    metadata,
    Column("run_id", String(36), ForeignKey("workflow_runs.id", ondelete="CASCADE"),
           primary_key=True),
    Column("step", String(63), primary_key=True),
    Column("event_glob", String(255), nullable=False),
    Column("filter", Json, nullable=False),
    Column("after_seq", Id, nullable=False),
    Column("expires_at", UTCDateTime),
    Index(None, "expires_at"),
)

# named artifacts a run's steps stored: JSON, or bytes
workflow_artifacts = Table(
    "workflow_artifacts",
    metadata,
    Column("run_id", String(36), ForeignKey("workflow_runs.id", ondelete="CASCADE"),
           primary_key=True),
    Column("name", binary_string(255), primary_key=True),
    Column("step", String(63)),
    Column("task_id", String(36)),
    Column("kind", String(8), nullable=False),  # json | bytes
    Column("value", Json),
    Column("data", LargeBinary),
    Column("size", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
    CheckConstraint("kind IN ('json', 'bytes')", name="kind"),
)

# a person's decision that a step (or a handler, ctx.approval) waits for
approvals = Table(
    "approvals",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("title", String(500), nullable=False),
    Column("details", Json, nullable=False),
    Column("role", String(16), nullable=False),  # the least role that may decide
    Column("on_timeout", String(8), nullable=False),  # approve | reject | fail
    Column("expires_at", UTCDateTime),
    Column("run_id", String(36)),
    Column("step", String(63)),
    Column("task_id", String(36)),
    # what makes a handler's request unique: asking again after a retry finds it
    Column("request_key", String(300)),
    Column("correlation_id", String(64), nullable=False),
    Column("decided_by", String(200)),
    Column("comment", Text),
    Column("created_at", UTCDateTime, nullable=False, server_default=utcnow()),
    Column("decided_at", UTCDateTime),
    CheckConstraint("status IN ('pending', 'approved', 'rejected', 'expired', 'cancelled')",
                    name="status"),
    CheckConstraint("role IN ('admin', 'operator', 'viewer')", name="role"),
    CheckConstraint("on_timeout IN ('approve', 'reject', 'fail')", name="on_timeout"),
    Index(None, "status", "id"),
    Index(None, "expires_at", sqlite_where=text("status = 'pending'"),
          postgresql_where=text("status = 'pending'")),
    Index(None, "run_id"),
    Index(None, "request_key", unique=True, sqlite_where=text("request_key IS NOT NULL"),
          postgresql_where=text("request_key IS NOT NULL")),
)


# what the migrations make beyond this metadata (the schema test leaves it out of its
# comparison): SQLite's FTS5 table and its shadow tables, PostgreSQL's tsvector column
# and its index
_UNMODELLED_TABLES = ("knowledge_fts",)  # and every table whose name starts so
_UNMODELLED = {("knowledge_documents", "search"),
               ("knowledge_documents", "ix_knowledge_documents_search")}


def unmodelled(name: str | None, table: str | None) -> bool:
    """Whether a reflected table, column or index (``name``, of ``table``) is one of those."""
    if name is None:
        return False
    return name.startswith(_UNMODELLED_TABLES) or (table, name) in _UNMODELLED
