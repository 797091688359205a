"""Workflows (SPEC §2.8): durable DAGs of agent steps, approvals, waits for events and
sub-workflows, on top of the task queue and the event log.

    spec         the definition document and its validation (pure)
    expressions  templates, by Jinja2's sandbox (pure)
    states       run and step states, their transition tables (pure)
    plan         what a run does next, from its state (pure)
    definitions  versions of definitions: import, export, lifecycle
    engine       moves runs on: the log's consumer, the timer, one ``Batch`` per transaction
    runs         start, cancel, rerun, read, explain
    artifacts    what steps store by name
"""
