"""Fake provider servers on loopback: small, scriptable fakes of each wire format (test doubles).

FakeOllama (native /api/chat NDJSON, /api/version, /api/tags, /api/pull), FakeOpenAI (chat completions
JSON and SSE, also used for Kimi) and FakeAnthropic (Messages JSON and SSE events). Each counts its
connections and requests and replays a queue of `Reply` scripts: status codes with headers, a slow first
byte, a stream cut after N chunks, an error inside a 200 stream, a tool call. `ConnectionRecorder` is a
bare listening socket that only counts connections; `closed_port_url()` gives a refused address.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.net import closed_port_url

__all__ = ["Clock", "ConnectionRecorder", "FakeAnthropic", "FakeOllama", "FakeOpenAI", "Reply", "closed_port_url"]


class Clock:
    """A monotonic clock a test moves by hand (breaker cooldowns without sleeping): set `now`."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Reply:
    """How a fake answers one request. The default is a successful answer with `text`."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # overrides the error body for non-200 replies
    text: str = "Hello from the fake"
    delay: float = 0.0  # seconds before the first byte
    cut_after: int | None = None  # stream: drop the connection after this many text chunks
    error_after: int | None = None  # stream: send an error event after this many text chunks
    tool: tuple[str, dict[str, Any]] | None = None  # answer with one call of this tool instead of text
    reasoning: str | None = None  # the model's reasoning, given where the request asks for it as each API does
    tool_id: str = "call_fake1"  # the id of that call (OpenAI-format fakes; Kimi K2's look like functions.NAME:0)
    extra: dict[str, Any] = field(default_factory=dict)  # Ollama: extra fields on the final object
    # Write the whole answer yourself (status line, headers, body, pauses): the hostile and broken servers.
    script: Callable[[_Handler], None] | None = None

    @classmethod
    def fail(cls, status: int, headers: dict[str, str] | None = None, body: Any = None) -> Reply:
        return cls(status=status, headers=headers or {}, body=body)

    @classmethod
    def raw(
        cls,
        data: bytes,
        *,
        status: int = 200,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        trickle: float = 0.0,
    ) -> Reply:
        """Exactly these bytes as the body, optionally one byte every `trickle` seconds."""

        def script(handler: _Handler) -> None:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.flush()
            if not trickle:
                handler.wfile.write(data)
                return
            for byte in data:
                if handler.server.fake.stopping.wait(trickle):
                    return
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()

        return cls(script=script)

    @classmethod
    def silent_after_headers(cls, seconds: float, content_type: str = "application/json") -> Reply:
        """A 200 with headers, then nothing for `seconds` (or until the fake closes)."""

        def script(handler: _Handler) -> None:
            handler.start_stream(content_type)
            handler.server.fake.stopping.wait(seconds)

        return cls(script=script)

    @classmethod
    def keepalives(cls, line: bytes, every: float, content_type: str = "text/event-stream") -> Reply:
        """A 200 stream that sends only `line` (an SSE comment, a blank NDJSON line) every `every` seconds."""

        def script(handler: _Handler) -> None:
            handler.start_stream(content_type)
            while not handler.server.fake.stopping.wait(every):
                handler.chunk(line)

        return cls(script=script)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes; don't wait for delayed ACKs
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self.server.fake.dispatch(self, "GET")

    def do_POST(self) -> None:
        self.server.fake.dispatch(self, "POST")

    # --- writing helpers ---------------------------------------------------------------------------------
    def send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def drop(self) -> None:
        """Abort the connection mid-body (the client sees an incomplete chunked stream)."""
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and left is part of the script, not a fake failure

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.fake.lock:
            self.fake.connections += 1
        super().process_request(request, client_address)


class FakeServer:
    """Base: a threaded HTTP server on 127.0.0.1 with a reply queue and request log."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.replies: deque[Reply] = deque()
        self.default = Reply()
        self.requests: list[Seen] = []
        self.connections = 0
        self.stopping = threading.Event()  # scripts that wait or trickle end when the fake closes
        self.in_flight = 0
        self.max_in_flight = 0
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def queue(self, *replies: Reply) -> None:
        with self.lock:
            self.replies.extend(replies)

    def calls(self, suffix: str = "") -> int:
        with self.lock:
            return sum(1 for seen in self.requests if seen.path.endswith(suffix))

    def close(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def dispatch(self, handler: _Handler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        with self.lock:
            self.requests.append(Seen(method, handler.path, {k.lower(): v for k, v in handler.headers.items()}, body))
            reply = self.replies.popleft() if self.replies else self.default
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if reply.delay:
                time.sleep(reply.delay)
            if reply.script is not None:
                with contextlib.suppress(OSError):  # the client gave up and closed: part of the script
                    reply.script(handler)
                return
            if reply.status != 200:
                handler.send_json(reply.status, reply.body or self.error_body(reply.status), reply.headers)
                return
            self.respond(handler, method, handler.path, body or {}, reply)
        finally:
            with self.lock:
                self.in_flight -= 1

    def error_body(self, status: int) -> Any:
        return {"error": {"message": f"fake error {status}", "type": "fake_error"}}

    def respond(self, handler: _Handler, method: str, path: str, body: dict[str, Any], reply: Reply) -> None:
        raise NotImplementedError

    @staticmethod
    def pieces(text: str) -> list[str]:
        words = text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]

    def stream_pieces(self, handler: _Handler, reply: Reply, encode: Any) -> bool:
        """Send the text pieces through `encode`; returns False when the script cut or broke the stream."""
        for index, piece in enumerate(self.pieces(reply.text)):
            if reply.cut_after is not None and index == reply.cut_after:
                handler.drop()
                return False
            if reply.error_after is not None and index == reply.error_after:
                handler.chunk(self.stream_error())
                handler.end_stream()
                return False
            handler.chunk(encode(piece))
        return True

    def stream_error(self) -> bytes:
        raise NotImplementedError


class FakeOllama(FakeServer):
    """Ollama's native API. `models` is what /api/tags lists; `version` what /api/version says."""

    def __init__(self, models: tuple[str, ...] = ("llama3.2:latest",), version: str = "0.14.2") -> None:
        super().__init__()
        self.models = list(models)
        self.version = version

    def error_body(self, status: int) -> Any:
        return {"error": f"fake error {status}"}

    def stream_error(self) -> bytes:
        return b'{"error":"fake: model runner crashed"}\n'

    def respond(self, handler: _Handler, method: str, path: str, body: dict[str, Any], reply: Reply) -> None:
        if path == "/api/version":
            handler.send_json(200, {"version": self.version})
        elif path == "/api/tags":
            handler.send_json(200, {"models": [{"name": m, "model": m, "size": 1} for m in self.models]})
        elif path == "/api/pull":
            handler.start_stream("application/x-ndjson")
            for status in ("pulling manifest", "downloading", "success"):
                handler.chunk(json.dumps({"status": status, "total": 10, "completed": 10}).encode() + b"\n")
            handler.end_stream()
            self.models.append(body.get("model", ""))
        elif path == "/api/chat":
            self._chat(handler, body, reply)
        elif path == "/api/embed":  # one vector per input, in order; its length depends on the text
            texts = body.get("input") if isinstance(body.get("input"), list) else [body.get("input")]
            vectors = [[float(len(str(t))), 0.5, -0.5] for t in texts]
            handler.send_json(200, {"model": body.get("model", ""), "embeddings": vectors, "prompt_eval_count": 5})
        else:
            handler.send_json(404, {"error": "not found"})

    def _final(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        # A prompt longer than the context window (options.num_ctx, else Ollama's default 4096) is cut to it, and
        # the answer is still a 200 (ollama#17889): its prompt_eval_count is the window, not the prompt.
        window = int((body.get("options") or {}).get("num_ctx") or 4096)
        prompt = sum(len(str(m.get("content") or "")) for m in body.get("messages") or ()) // 4
        return {
            "model": body.get("model", ""),
            "created_at": "2026-01-01T00:00:00Z",
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": window if prompt > window else 7,
            "eval_count": len(self.pieces(reply.text)),
            "eval_duration": 500_000_000,
            "load_duration": 1000,
            "total_duration": 600_000_000,
            **reply.extra,
        }

    def _chat(self, handler: _Handler, body: dict[str, Any], reply: Reply) -> None:
        model = body.get("model", "")
        if reply.tool is not None:
            name, arguments = reply.tool
            message = {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"function": {"name": name, "arguments": arguments}}],
            }
            final = {**self._final(body, reply), "message": message}
            if body.get("stream", True):
                handler.start_stream("application/x-ndjson")
                handler.chunk(json.dumps(final).encode() + b"\n")
                handler.end_stream()
            else:
                handler.send_json(200, final)
            return
        thinking = reply.reasoning if reply.reasoning and body.get("think") not in (None, False) else None
        if not body.get("stream", True):
            message = {"role": "assistant", "content": reply.text, **({"thinking": thinking} if thinking else {})}
            handler.send_json(200, {**self._final(body, reply), "message": message})
            return
        handler.start_stream("application/x-ndjson")
        if thinking:  # Ollama streams the thinking first, in message.thinking, with empty content
            line = {
                "model": model,
                "message": {"role": "assistant", "content": "", "thinking": thinking},
                "done": False,
            }
            handler.chunk(json.dumps(line).encode() + b"\n")

        def encode(piece: str) -> bytes:
            line = {"model": model, "message": {"role": "assistant", "content": piece}, "done": False}
            return json.dumps(line).encode() + b"\n"

        if self.stream_pieces(handler, reply, encode):
            final = {**self._final(body, reply), "message": {"role": "assistant", "content": ""}}
            handler.chunk(json.dumps(final).encode() + b"\n")
            handler.end_stream()


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data) if not isinstance(data, str) else data}\n\n".encode()


class FakeOpenAI(FakeServer):
    """OpenAI chat completions (also Kimi's wire format). Serve at `url + "/v1"` as the base URL."""

    model = "gpt-4o-mini"

    def __init__(self, usage_in_choice: bool = False, send_usage: bool = True, repeat_tool_name: bool = False) -> None:
        super().__init__()
        self.usage_in_choice = usage_in_choice  # Moonshot's stream puts usage on the last choice
        self.send_usage = send_usage  # False: like llama.cpp's server, which ignores include_usage
        # True: like llama.cpp's server, every streamed tool-call delta repeats the call's id, type and name
        self.repeat_tool_name = repeat_tool_name

    def stream_error(self) -> bytes:
        return _sse({"error": {"message": "fake: upstream overloaded", "type": "server_error"}})

    def respond(self, handler: _Handler, method: str, path: str, body: dict[str, Any], reply: Reply) -> None:
        if method == "GET" and path.endswith("/models"):
            model = {"id": self.model, "object": "model", "created": 1, "owned_by": "fake"}
            handler.send_json(200, {"object": "list", "data": [model]})
            return
        if path.endswith("/embeddings"):
            texts = body.get("input") if isinstance(body.get("input"), list) else [body.get("input")]
            vectors: list[Any] = [[float(len(str(t))), 1.0] for t in texts]
            if body.get("encoding_format") == "base64":  # little-endian float32, as the API sends it
                vectors = [base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode() for v in vectors]
            data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
            usage = {"prompt_tokens": 8, "total_tokens": 8}
            handler.send_json(200, {"object": "list", "data": data, "model": body.get("model", ""), "usage": usage})
            return
        if not path.endswith("/chat/completions"):
            handler.send_json(404, self.error_body(404))
            return
        model = body.get("model", self.model)
        usage = {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}
        base = {"id": "chatcmpl-fake", "object": "chat.completion", "created": 1, "model": model}
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        finish = "stop"
        if reply.tool is not None:
            name, arguments = reply.tool
            call = {
                "id": reply.tool_id,
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            finish = "tool_calls"
        if reply.reasoning:  # Kimi's thinking models: reasoning_content beside content
            message["reasoning_content"] = reply.reasoning
        if not body.get("stream"):
            choice = {"index": 0, "message": message, "finish_reason": finish}
            handler.send_json(200, {**base, "choices": [choice], **({"usage": usage} if self.send_usage else {})})
            return
        handler.start_stream("text/event-stream")
        chunk_base = {**base, "object": "chat.completion.chunk"}

        def encode(piece: str) -> bytes:
            return _sse({**chunk_base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})

        if reply.reasoning:
            delta = {"reasoning_content": reply.reasoning}
            handler.chunk(_sse({**chunk_base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}))
        if reply.tool is not None:
            call = message["tool_calls"][0]
            args = call["function"]["arguments"]
            first = {
                "index": 0,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": args[:5]},
            }
            rest = [{"index": 0, "function": {"arguments": args[i : i + 5]}} for i in range(5, len(args), 5)]
            if self.repeat_tool_name:
                rest = [{**first, "function": {**first["function"], **piece["function"]}} for piece in rest]
            for delta in ({"tool_calls": [first]}, *({"tool_calls": [piece]} for piece in rest)):
                handler.chunk(_sse({**chunk_base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}))
        elif not self.stream_pieces(handler, reply, encode):
            return
        last: dict[str, Any] = {"index": 0, "delta": {}, "finish_reason": finish}
        if self.usage_in_choice and self.send_usage:
            last["usage"] = usage
        handler.chunk(_sse({**chunk_base, "choices": [last]}))
        if (body.get("stream_options") or {}).get("include_usage") and self.send_usage:
            handler.chunk(_sse({**chunk_base, "choices": [], "usage": usage}))
        handler.chunk(_sse("[DONE]"))
        handler.end_stream()


_ANTHROPIC_TOOL_ID = re.compile(r"[a-zA-Z0-9_-]+")


def _anthropic_tool_ids(body: dict[str, Any]) -> list[str]:
    """The ids of the tool_use and tool_result blocks of a Messages request."""
    ids = []
    for message in body.get("messages") or ():
        for block in message.get("content") if isinstance(message.get("content"), list) else ():
            if block.get("type") == "tool_use":
                ids.append(str(block.get("id")))
            elif block.get("type") == "tool_result":
                ids.append(str(block.get("tool_use_id")))
    return ids


class FakeAnthropic(FakeServer):
    """Anthropic Messages API (`POST /v1/messages`), JSON and SSE events."""

    def error_body(self, status: int) -> Any:
        kind = {401: "authentication_error", 429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": f"fake error {status}"}}

    def stream_error(self) -> bytes:
        return _sse({"type": "error", "error": {"type": "overloaded_error", "message": "fake: overloaded"}}, "error")

    def respond(self, handler: _Handler, method: str, path: str, body: dict[str, Any], reply: Reply) -> None:
        if method == "GET" and path.split("?", maxsplit=1)[0].endswith("/v1/models"):
            model = {"type": "model", "id": "claude-sonnet-4-6", "display_name": "Claude Sonnet 4.6"}
            model["created_at"] = "2026-01-01T00:00:00Z"
            handler.send_json(
                200, {"data": [model], "has_more": False, "first_id": model["id"], "last_id": model["id"]}
            )
            return
        if not path.endswith("/v1/messages"):
            handler.send_json(404, self.error_body(404))
            return
        bad_id = next((i for i in _anthropic_tool_ids(body) if not _ANTHROPIC_TOOL_ID.fullmatch(i)), None)
        if bad_id is not None:  # as the API answers: tool_use.id must match ^[a-zA-Z0-9_-]+$
            message = f"messages: tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$' (got {bad_id!r})"
            handler.send_json(400, {"type": "error", "error": {"type": "invalid_request_error", "message": message}})
            return
        model = body.get("model", "claude-sonnet-4-6")
        blocks: list[dict[str, Any]] = [{"type": "text", "text": reply.text}]
        stop = "end_turn"
        if reply.tool is not None:
            name, arguments = reply.tool
            blocks = [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_fake1", "name": name, "input": arguments},
            ]
            stop = "tool_use"
        thinking = (
            reply.reasoning if reply.reasoning and (body.get("thinking") or {}).get("type") == "enabled" else None
        )
        if thinking:  # extended thinking: a thinking block (with its signature) before the answer
            blocks = [{"type": "thinking", "thinking": thinking, "signature": "sig-fake"}, *blocks]
        usage = {"input_tokens": 20, "output_tokens": 10}
        message = {"id": "msg_fake", "type": "message", "role": "assistant", "model": model}
        if not body.get("stream"):
            handler.send_json(
                200, {**message, "content": blocks, "stop_reason": stop, "stop_sequence": None, "usage": usage}
            )
            return
        handler.start_stream("text/event-stream")
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 20, "output_tokens": 1},
        }
        handler.chunk(_sse({"type": "message_start", "message": start}, "message_start"))
        first = 0
        if thinking:
            block = {"type": "thinking", "thinking": "", "signature": ""}
            handler.chunk(
                _sse({"type": "content_block_start", "index": 0, "content_block": block}, "content_block_start")
            )
            for delta in (
                {"type": "thinking_delta", "thinking": thinking},
                {"type": "signature_delta", "signature": "s"},
            ):
                handler.chunk(_sse({"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta"))
            handler.chunk(_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
            first = 1
        handler.chunk(
            _sse(
                {"type": "content_block_start", "index": first, "content_block": {"type": "text", "text": ""}},
                "content_block_start",
            )
        )

        def encode(piece: str) -> bytes:
            delta = {"type": "content_block_delta", "index": first, "delta": {"type": "text_delta", "text": piece}}
            return _sse(delta, "content_block_delta")

        if reply.tool is not None:
            handler.chunk(encode("Let me check."))
            handler.chunk(_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
            tool_block = {"type": "tool_use", "id": "toolu_fake1", "name": reply.tool[0], "input": {}}
            handler.chunk(
                _sse({"type": "content_block_start", "index": 1, "content_block": tool_block}, "content_block_start")
            )
            args = json.dumps(reply.tool[1])
            for part in (args[:4], args[4:]):
                delta = {
                    "type": "content_block_delta",
                    "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": part},
                }
                handler.chunk(_sse(delta, "content_block_delta"))
            handler.chunk(_sse({"type": "content_block_stop", "index": 1}, "content_block_stop"))
        else:
            if not self.stream_pieces(handler, reply, encode):
                return
            handler.chunk(_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
        end = {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": 10},
        }
        handler.chunk(_sse(end, "message_delta"))
        handler.chunk(_sse({"type": "message_stop"}, "message_stop"))
        handler.end_stream()


class ConnectionRecorder:
    """A listening socket that accepts, counts and closes every connection. Point cloud base URLs here
    to prove that nothing ever tried to connect."""

    def __init__(self) -> None:
        self.connections = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._sock.close()
