"""Request and response models of the REST API, one module per resource, pure Pydantic v2.

Each model is defined once and serves both ends: the routes declare it as their
response model (so /docs shows it and FastAPI checks every answer against it) and
the SDK parses answers into it (``Client.get_task`` returns a ``tasks.TaskDetail``).

    common         Model (the base), Timestamp (ISO 8601 on the wire), Page
    agents         AgentSummary, AgentVersion, pages, import results
    events         Event, AppendedEvent, EventPage, Route, EventRoutes, router explain
    tasks          Task, Attempt, TaskDetail, TaskPage, Worker, logs, explain
    locks          Lock, Holder, Waiter, LockGrant, Acquired
    schedules      Schedule
    users          User, ApiKey, Login
    subscriptions  Subscription
    agent_config, agent_state, budgets, llm_calls, knowledge, models, projections

Response models ignore fields they do not know, so an SDK keeps working against a
newer server that sends more.
"""
