"""OpenTelemetry traces (SPEC §2.9) when ``AGENTOS_OTLP_ENDPOINT`` is set: a span per HTTP
request, task attempt and LLM call, each carrying the correlation id
(``agentos.correlation_id``), exported in batches over OTLP/HTTP by the
opentelemetry-sdk to ``{endpoint}/v1/traces``.

Unset (the default), nothing of OpenTelemetry is imported and ``span`` hands back one
shared do-nothing context manager: a call and a None check per span site.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("agentos.traces")

_NOTHING = contextlib.nullcontext()
_tracer: Any = None
_provider: Any = None


def setup(endpoint: str | None, service: str) -> bool:
    """Export spans to ``endpoint`` (an OTLP/HTTP collector, e.g. http://host:4318) as
    ``service``; with no endpoint, spans cost nothing. Returns whether tracing is on."""
    global _tracer, _provider
    if not endpoint or _provider is not None:
        return _provider is not None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    _provider = TracerProvider(resource=Resource.create({"service.name": service}))
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
        endpoint=endpoint.rstrip("/") + "/v1/traces")))
    _tracer = _provider.get_tracer("agentos")
    log.info("exporting traces to %s", endpoint, extra={"action": "traces_on"})
    return True


def enabled() -> bool:
    return _tracer is not None


def span(name: str, attributes: dict[str, Any] | None = None
         ) -> contextlib.AbstractContextManager[Any]:
    """A span around a block (attributes whose value is None are left out); the
    do-nothing context when tracing is off."""
    if _tracer is None:
        return _NOTHING
    return _span(name, attributes or {})


@contextlib.contextmanager
def _span(name: str, attributes: dict[str, Any]) -> Iterator[Any]:
    with _tracer.start_as_current_span(name) as current:
        for key, value in attributes.items():
            if value is not None:
                current.set_attribute(key, value)
        yield current


def annotate(current: Any, attributes: dict[str, Any]) -> None:
    """Add attributes to a span ``span`` returned (nothing when tracing is off)."""
    if current is None or _tracer is None:
        return
    for key, value in attributes.items():
        if value is not None:
            current.set_attribute(key, value)


def flush(timeout_s: float = 5.0) -> None:
    """Export what is batched now (tests, shutdown)."""
    if _provider is not None:
        _provider.force_flush(int(timeout_s * 1000))


def shutdown() -> None:
    """Export what is left and stop; tracing is off afterwards."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None
