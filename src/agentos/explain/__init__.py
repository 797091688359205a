"""Explaining itself (SPEC §2.12): why a task is not running, and where an event would go.

    gates.py       the registry of gates a task's explanation asks (Facts, Finding,
                   register): pure decisions, extensible by any concept
    task_gates.py  the built-in gates: due time, budget, resources, workers,
                   concurrency, capabilities, the running attempt, how a task ended
    task.py        explain(store, task_id): read the facts, ask the gates
    event.py       explain(store, event): where an event would go, nothing written
"""
