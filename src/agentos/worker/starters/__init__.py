"""Handlers of the starter agents (qa-manager, explorer, executor): small, real work
that shows an alert flowing through routing, tasks and events."""
