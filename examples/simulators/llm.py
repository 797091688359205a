"""An OpenAI-compatible API on 127.0.0.1: the LLM provider of the examples when no real
endpoint is configured, and the one outside service the test suite fakes
(``tests/fake_llm.py``). It records every request and answers from it:

- content ``echo: <last user message>``, or with ``response_format`` json_object
  a JSON object ``{"verdict": "pass", "echo": <last user message>}``;
- usage ``USAGE`` (12 prompt + 5 completion tokens), ``model`` as asked;
- a model named ``status-NNN`` gets HTTP status NNN instead;
- a model named ``prose`` answers ``plain words``, even when asked for JSON.

``/v1/embeddings`` answers each input with a bag-of-words vector of ``DIMENSIONS``
numbers: each word (lower-cased, mapped through ``SYNONYMS`` so that "car" and
"automobile" land together) adds 1 to the dimension its hash picks. So vector search
finds what words alone would miss. A model named ``status-NNN`` gets HTTP status NNN;
one named ``dims-N`` gets vectors of N numbers (the same words, spread wider).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from examples.simulators.http import JsonServer, Request

USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
DIMENSIONS = 64
SYNONYMS = {"car": "automobile", "cars": "automobile", "auto": "automobile",
            "vehicle": "automobile", "puppy": "dog", "hound": "dog"}


def embedding(text: str, dimensions: int = DIMENSIONS) -> list[float]:
    vector = [0.0] * dimensions
    for word in re.findall(r"\w+", text.lower()):
        word = SYNONYMS.get(word, word)
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % dimensions] += 1.0
    return vector if any(vector) else [1.0] + [0.0] * (dimensions - 1)


class FakeLlm:
    """Start with ``start()``; ``base_url`` ends in ``/v1``; ``requests`` holds what arrived
    (``path``, ``body``, ``headers`` with lower-cased names)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._http = JsonServer(self._answer)

    @property
    def base_url(self) -> str:
        return f"{self._http.url}/v1"

    def _answer(self, request: Request) -> tuple[int, dict[str, Any]]:
        self.requests.append({"path": request.path, "body": request.body,
                              "headers": request.headers})
        if request.method != "POST":
            return 405, {"error": {"message": "POST only"}}
        return self.answer(request.path, request.body)

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
        wide = re.fullmatch(r"dims-([0-9]{1,4})", model)
        dimensions = int(wide.group(1)) if wide else DIMENSIONS
        return 200, {"object": "list", "model": model,
                     "data": [{"object": "embedding", "index": i,
                               "embedding": embedding(t, dimensions)}
                              for i, t in enumerate(texts)],
                     "usage": {"prompt_tokens": 1, "total_tokens": 1}}

    def start(self) -> FakeLlm:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()
