"""The floor under a single write over HTTP: a uvicorn server's CPU per request for an
endpoint that does no work, in the shapes a route can take, beside AgentOS's own
append (``http_single.py``). It says how much of target 1's 0.4 ms (issue 21) the
request machinery alone uses before any store call.

Each shape answers ``POST /x`` with an event-like JSON body (type, source, payload) by
201 and a small JSON object, in a uvicorn process started as ``agentos serve`` starts
its own (the same loop and HTTP parser: uvloop and httptools when installed):

- ``asgi``: a bare ASGI callable (reads the body, parses it with orjson);
- ``starlette``: a Starlette ``Route`` (``await request.body()``, orjson);
- ``fastapi``: a FastAPI route with a Pydantic body model and a response model;
- ``fastapi+4mw+dep``: the same with four pass-through ASGI middlewares and one
  dependency, as many as AgentOS's stack has (request log, audit scope, body limit,
  input guard; the access guard).

One keep-alive connection sends ``--n`` requests, one at a time, after a warm-up.

    .venv/bin/python bench/http_floor.py --n 5000
"""

# no ``from __future__ import annotations``: FastAPI reads the route's annotations, and
# the models are defined inside the factory
import argparse
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench_tasks import Connection
from common import free_port, process_cpu_s

SHAPES = ("asgi", "starlette", "fastapi", "fastapi+4mw+dep")
BODY = json.dumps({"type": "bench.floor", "source": "bench",
                   "payload": {"n": 1, "text": "x" * 40}}).encode()
ANSWER = {"seq": 1, "id": "0193b0a0-0000-7000-8000-000000000000", "duplicate": False}


# ------------------------------------------------------------------ the apps


def make_asgi() -> Any:
    import orjson

    answer = orjson.dumps(ANSWER)
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(answer)).encode())]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        orjson.loads(body)
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    return app


def make_starlette() -> Any:
    import orjson
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def x(request: Request) -> Response:
        orjson.loads(await request.body())
        return Response(orjson.dumps(ANSWER), 201, media_type="application/json")

    return Starlette(routes=[Route("/x", x, methods=["POST"])])


def _fastapi(middlewares: int, dependency: bool) -> Any:
    from fastapi import Depends, FastAPI, Request
    from pydantic import BaseModel, ConfigDict, Field

    class EventIn(BaseModel):
        model_config = ConfigDict(extra="forbid")
        type: str = Field(min_length=1, max_length=255)
        source: str | None = None
        payload: dict[str, Any] = Field(default_factory=dict)

    class Appended(BaseModel):
        seq: int
        id: str
        duplicate: bool

    async def guard(request: Request) -> None:
        request.state.checked = True

    app = FastAPI(dependencies=[Depends(guard)] if dependency else [])

    @app.post("/x", status_code=201, response_model=Appended)
    async def x(body: EventIn) -> dict[str, Any]:
        return ANSWER

    class PassThrough:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await self.app(scope, receive, send)

    for _ in range(middlewares):
        app.add_middleware(PassThrough)
    return app


def make_fastapi() -> Any:
    return _fastapi(0, False)


def make_fastapi_stack() -> Any:
    return _fastapi(4, True)


FACTORIES = {"asgi": "make_asgi", "starlette": "make_starlette", "fastapi": "make_fastapi",
             "fastapi+4mw+dep": "make_fastapi_stack"}


# ------------------------------------------------------------------ the runs


def _serve(shape: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", f"http_floor:{FACTORIES[shape]}",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
         "--no-access-log"], cwd=Path(__file__).parent)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"the {shape} server did not start") from None
            time.sleep(0.05)


def measure(shape: str, n: int) -> dict[str, Any]:
    process, port = _serve(shape)
    try:
        conn = Connection(f"http://127.0.0.1:{port}")
        for _ in range(min(200, n)):
            assert conn.post("/x", BODY)[0] == 201
        cpu0, t0 = process_cpu_s(process.pid), time.perf_counter()
        for _ in range(n):
            status, _ = conn.post("/x", BODY)
            assert status == 201, status
        wall, cpu = time.perf_counter() - t0, process_cpu_s(process.pid) - cpu0
        conn.close()
        return {"shape": shape, "requests_per_s": round(n / wall),
                "server_cpu_us": round(cpu / n * 1e6)}
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="requests per shape")
    parser.add_argument("--shapes", default=",".join(SHAPES),
                        help=f"comma-separated, of {', '.join(SHAPES)}")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    shapes = [s for s in args.shapes.split(",") if s]
    unknown = [s for s in shapes if s not in FACTORIES]
    if unknown:
        parser.error(f"unknown shape(s): {', '.join(unknown)}")
    results = [measure(shape, args.n) for shape in shapes]
    if args.json:
        print(json.dumps({"n": args.n, "results": results}))
        return
    print(f"{'shape':<18} {'requests/s':>10} {'server CPU us/request':>22}")
    for r in results:
        print(f"{r['shape']:<18} {r['requests_per_s']:>10} {r['server_cpu_us']:>22}")


if __name__ == "__main__":
    main()
