"""A local OpenAI-compatible chat-completions server for the LLM agent tests and benchmark.

Standard library only (http.server in a thread), bound to 127.0.0.1, HTTP/1.1 keep-alive
and TCP_NODELAY on every accepted socket (without it Nagle plus delayed ACKs make each
call about 44 ms). `POST /v1/chat/completions` answers with a move from a scripted policy
that reads the prompt (Balatro's "Legal now:" line, a Game Boy env's "Answer with exactly
one of: ..." list), in the plain format the OpenAI agent asks for ("...\nAction: play 1 2")
or in DSPy's ChatAdapter format when the system message uses its `[[ ## field ## ]]`
markers. Usage counts are 1 token per 4 characters, so they are deterministic.

Faults are queued with `inject(...)`; each request consumes at most one:
  "429"       HTTP 429 with Retry-After (and retry-after-ms) headers
  "500"       HTTP 500
  "hang"      sleep `hang_s` (past the client's timeout), then answer
  "malformed" HTTP 200 whose body is cut-off JSON
  "nonsense"  HTTP 200, a well-formed completion whose text is no command at all

`stats` counts requests, answers, images and each fault served; `prompts` keeps the text
of the last answered requests; `auth_headers` keeps the
Authorization headers seen (the tests check the key reached the server, and only there).
With `required_key` set, a request without `Authorization: Bearer <required_key>` gets 401.
"""
from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional

FAULTS = ("429", "500", "hang", "malformed", "nonsense")
NONSENSE = "The quick brown fox considers the meaning of cards and buttons."

Policy = Callable[[str], str]


class ScriptedPolicy:
    """A legal move for the state in the prompt: Balatro plays the first five cards (or the
    forced one), selects blinds and leaves shops; a Game Boy env cycles through its buttons."""

    _ONE_OF = re.compile(r"Answer with exactly one of: (.+?)\. Each holds", re.S)

    def __init__(self) -> None:
        self.turn = 0
        self._lock = threading.Lock()

    def __call__(self, prompt: str) -> str:
        legal = prompt.rsplit("Legal now:", 1)[1].splitlines()[0] if "Legal now:" in prompt else ""
        if legal:
            forced = re.search(r"must include card (\d+)", legal)
            if legal.strip().startswith("play"):
                return f"play {forced.group(1)}" if forced else "play 1 2 3 4 5"
            for word in ("select", "leave", "reroll", "skip"):
                if re.search(rf"\b{word}\b", legal):
                    return word
        options = self._ONE_OF.findall(prompt)
        if options:
            answers = [a.strip() for a in options[-1].split("|")]
            with self._lock:
                self.turn += 1
                return answers[self.turn % len(answers)]
        return "noop"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def get_request(self):
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr


class LLMStubServer:
    """`with LLMStubServer() as server:` -> an endpoint at `server.base_url` (".../v1")."""

    def __init__(self, policy: Optional[Policy] = None, *, hang_s: float = 1.0,
                 retry_after_s: float = 0.05, latency_s: float = 0.0,
                 required_key: Optional[str] = None) -> None:
        self.policy: Policy = policy or ScriptedPolicy()
        self.required_key = required_key
        self.hang_s = hang_s
        self.retry_after_s = retry_after_s
        self.latency_s = latency_s  # added to every answer (the benchmark's "model time")
        self.faults: deque[str] = deque()
        self.stats: Counter[str] = Counter()
        self.auth_headers: set[str] = set()
        self.prompts: deque[str] = deque(maxlen=100)  # the text of the last requests' messages
        self.server_time_s = 0.0  # time spent inside the handler, summed over answered requests
        self._lock = threading.Lock()
        self._httpd: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> "LLMStubServer":
        self._httpd = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="llm-stub",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "LLMStubServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def inject(self, *faults: str) -> None:
        unknown = [f for f in faults if f not in FAULTS]
        if unknown:
            raise ValueError(f"unknown fault(s) {unknown}; expected some of {FAULTS}")
        with self._lock:
            self.faults.extend(faults)

    def _next_fault(self) -> Optional[str]:
        with self._lock:
            return self.faults.popleft() if self.faults else None

    # ---------------------------------------------------------------- answers
    def answer(self, body: dict[str, Any]) -> tuple[str, dict[str, int]]:
        """The completion text for a request body, and its usage counts."""
        texts, images = [], 0
        for message in body.get("messages", []):
            content = message.get("content")
            if isinstance(content, list):
                for part in content:
                    if part.get("type") == "text":
                        texts.append(part.get("text", ""))
                    elif part.get("type") == "image_url":
                        images += 1
            elif content:
                texts.append(str(content))
        prompt = "\n".join(texts)
        self.prompts.append(prompt)
        if images:
            with self._lock:
                self.stats["images"] += images
        move = self.policy(prompt)
        text = self.format(prompt, move, "Scripted policy: a legal move for this state.")
        usage = {"prompt_tokens": len(prompt) // 4 + 85 * images,
                 "completion_tokens": len(text) // 4 + 1}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return text, usage

    @staticmethod
    def format(prompt: str, move: str, why: str) -> str:
        """DSPy's ChatAdapter fields when the prompt asks for them, else
        'reasoning\\nAction: move'."""
        if "[[ ## completed ## ]]" in prompt:
            outputs = prompt.split("Your output fields are:")[-1]
            fields = re.findall(r"\[\[ ## (\w+) ## \]\]", outputs)
            out = []
            if "reasoning" in fields:
                out.append(f"[[ ## reasoning ## ]]\n{why}")
            out.append(f"[[ ## action ## ]]\n{move}")
            out.append("[[ ## completed ## ]]")
            return "\n\n".join(out)
        return f"{why}\nAction: {move}"

    def _completion(self, body: dict[str, Any], text: str, usage: dict[str, int]) -> bytes:
        with self._lock:
            self.stats["answers"] += 1
            n = self.stats["answers"]
        return json.dumps({
            "id": f"chatcmpl-stub-{n}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "stub"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": usage,
        }).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, status: int, payload: bytes, headers: Optional[dict[str, str]] = None
                      ) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout) before the answer came

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, json.dumps({"object": "list", "data": [
                        {"id": "stub", "object": "model", "owned_by": "tests"}]}).encode())
                else:
                    self._send(404, b'{"error": {"message": "not found"}}')

            def do_POST(self) -> None:
                start = time.perf_counter()
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with stub._lock:
                    stub.stats["requests"] += 1
                    if self.headers.get("Authorization"):
                        stub.auth_headers.add(self.headers["Authorization"])
                expected = f"Bearer {stub.required_key}"
                if stub.required_key and self.headers.get("Authorization") != expected:
                    self._send(401, b'{"error": {"message": "invalid api key", "type": "auth"}}')
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, b'{"error": {"message": "only /v1/chat/completions"}}')
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._send(400, b'{"error": {"message": "request body is not JSON"}}')
                    return
                fault = stub._next_fault()
                if fault is not None:
                    with stub._lock:
                        stub.stats[f"fault_{fault}"] += 1
                if fault == "429":
                    self._send(429, b'{"error": {"message": "rate limited", "type": "rate_limit"}}',
                               {"Retry-After": str(max(1, round(stub.retry_after_s))),
                                "retry-after-ms": str(int(stub.retry_after_s * 1000))})
                    return
                if fault == "500":
                    self._send(500, b'{"error": {"message": "internal error", "type": "server"}}')
                    return
                if fault == "hang":
                    time.sleep(stub.hang_s)
                if fault == "malformed":
                    self._send(200, b'{"id": "chatcmpl-broken", "choices": [{"message": {"con')
                    return
                if fault == "nonsense":
                    text = NONSENSE
                    usage = {"prompt_tokens": 10, "completion_tokens": len(text) // 4,
                             "total_tokens": 10 + len(text) // 4}
                else:
                    text, usage = stub.answer(body)
                if stub.latency_s:
                    time.sleep(stub.latency_s)
                payload = stub._completion(body, text, usage)
                with stub._lock:
                    stub.server_time_s += time.perf_counter() - start
                self._send(200, payload)

        return Handler


def main() -> None:
    """`python -m tests.llm_server [--latency-ms N]`: serve until killed (first line: the URL)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="OpenAI-compatible stub server on 127.0.0.1")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every answer")
    args = parser.parse_args()
    server = LLMStubServer(latency_s=args.latency_ms / 1000.0).start()
    print(server.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
