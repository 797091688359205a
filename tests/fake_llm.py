"""A small OpenAI-compatible chat completion server for tests: the one outside
service the suite fakes. A real HTTP server on 127.0.0.1 (a free port, its own
thread) that records every request and answers from it:

- content ``echo: <last user message>``, or with ``response_format`` json_object
  a JSON object ``{"verdict": "pass", "echo": <last user message>}``;
- usage ``USAGE`` (12 prompt + 5 completion tokens), ``model`` as asked;
- a model named ``status-NNN`` gets HTTP status NNN instead;
- a model named ``prose`` answers ``plain words``, even when asked for JSON.

``/v1/embeddings`` answers each input with a bag-of-words vector of ``DIMENSIONS``
numbers: each word (lower-cased, mapped through ``SYNONYMS`` so that "car" and
"automobile" land together) adds 1 to the dimension its hash picks. So vector search
finds what words alone would miss. A model named ``status-NNN`` gets HTTP status NNN.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
DIMENSIONS = 64
SYNONYMS = {"car": "automobile", "cars": "automobile", "auto": "automobile",
            "vehicle": "automobile", "puppy": "dog", "hound": "dog"}


def embedding(text: str) -> list[float]:
    vector = [0.0] * DIMENSIONS
    for word in re.findall(r"\w+", text.lower()):
        word = SYNONYMS.get(word, word)
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIMENSIONS] += 1.0
    return vector if any(vector) else [1.0] + [0.0] * (DIMENSIONS - 1)


class FakeLlm:
    """Start with ``start()``; ``base_url`` ends in ``/v1``; ``requests`` holds what arrived."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Reply(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "body": body,
                                      "headers": {k.lower(): v for k, v in self.headers.items()}})
                status, answer = fake.answer(self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Reply)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if path == "/v1/embeddings":
            return self.embeddings(body)
        if path != "/v1/chat/completions":
            return 404, {"error": {"message": f"no route {path}"}}
        model = str(body.get("model", ""))
        if model.startswith("status-"):
            return int(model.removeprefix("status-")), {"error": {"message": "as asked"}}
        last = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        json_mode = body.get("response_format", {}).get("type") == "json_object"
        content = json.dumps({"verdict": "pass", "echo": last}) if json_mode else f"echo: {last}"
        if model == "prose":
            content = "plain words"
        return 200, {"id": "chatcmpl-fake", "object": "chat.completion", "model": model,
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": content}}],
                     "usage": USAGE}

    def embeddings(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        model = str(body.get("model", ""))
        if model.startswith("status-"):
            return int(model.removeprefix("status-")), {"error": {"message": "as asked"}}
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return 200, {"object": "list", "model": model,
                     "data": [{"object": "embedding", "index": i, "embedding": embedding(t)}
                              for i, t in enumerate(texts)],
                     "usage": {"prompt_tokens": 1, "total_tokens": 1}}

    def start(self) -> FakeLlm:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
