"""The five systems AgentOS was specified from, each a working example (SPEC §1).

Each ``examples/<name>/`` holds its agent and workflow YAML, handlers, projections,
data and README, and declares itself as ``EXAMPLE`` (an ``agentos.examples.Example``):
``agentos demo --example NAME`` runs it with the dashboard, ``tests/examples`` runs
it against a real server and worker on both backends. ``simulators/`` are the
outside world the handlers talk to (devices, an exchange, an LLM provider).
"""
