"""GET /api/v1/tasks/{id}/logs, and the log lines a remote worker sends with its
heartbeat, complete and fail requests."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from agentos import inputs, task_logs

SentLevel = Literal["debug", "info", "warning", "error", "critical", "stderr"]


class LogLineIn(BaseModel):
    """A line a remote worker's handler wrote; numbered and bounded by the server like a
    local worker's (``at``: when it was written, else when it arrives)."""

    model_config = ConfigDict(extra="forbid")
    level: SentLevel = "info"
    message: Annotated[str, Field(max_length=10 * task_logs.MAX_LINE_CHARS)]
    at: Annotated[AwareDatetime | None, AfterValidator(inputs.not_too_far)] = None

    def sent(self) -> task_logs.Sent:
        return task_logs.Sent(self.level, self.message, self.at)


LogLinesIn = Annotated[list[LogLineIn], Field(max_length=task_logs.MAX_REMOTE_LINES)]


class LogLine(BaseModel):
    attempt: int
    line: int  # 1, 2, ... within the attempt
    at: str
    level: str  # debug, info, warning, error, critical, stderr, truncated
    message: str


class TaskLogs(BaseModel):
    """A page of a task's log lines, oldest first (attempt, then line)."""

    task_id: str
    status: str  # the task's now: a follower stops once it ended and no more follow
    attempt: int
    lines: list[LogLine]
    next_after: str | None  # ATTEMPT:LINE to pass as ``after``; None: none more now


