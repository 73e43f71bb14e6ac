"""OpenAICompatiblePolicy against a real HTTP server on 127.0.0.1 that mimics the OpenAI API.

The server (http.server in a thread, loopback only) answers ``/v1/completions`` and
``/v1/chat/completions`` with canned samples whose per-token log-probs are known, so candidate
log-probs can be checked exactly. The request's ``model`` field picks a behaviour: ``canned``,
``flaky`` (two 503s, then answers), ``bad`` (400), ``slow`` (answers after the client's timeout),
``notjson``, ``nologprobs``.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from qengine.envs import TextState
from qengine.policies import Candidate, OpenAICompatiblePolicy, Policy
from qengine.policies.openai_compat import EndpointError

# Samples served in order, cycling; every token has log-prob -0.5.
CANNED = [
    " I should look at the first item.\nAction: click[b0a]",
    " Maybe search.\nAction: search[red mug]",
    " $$$ no idea",  # unparseable: dropped
    " Again the item.\nAction: click[b0a]",  # duplicate: dropped
    " Go back.\nAction: click[back to search]",
]
TOKEN_LP = -0.5


def tokens(text: str) -> list[str]:
    return re.findall(r"\s*[^\s\[\]]+|\s*[\[\]]|\s+", text)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _send(self, code: int, payload: bytes, headers: dict | None = None) -> None:
        # The request stops counting as in flight before its answer leaves: once the client has
        # the bytes it may start its next request, which must not be seen as a 4th concurrent one.
        self._finish_request()
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with srv.lock:
            srv.requests.append((self.path, dict(self.headers), body))
            srv.in_flight += 1
            srv.max_in_flight = max(srv.max_in_flight, srv.in_flight)
        self._counted = True
        try:
            self._answer(body)
        finally:
            self._finish_request()

    def _finish_request(self) -> None:
        if getattr(self, "_counted", False):
            self._counted = False
            with self.server.lock:
                self.server.in_flight -= 1

    def _answer(self, body: dict) -> None:
        srv, mode = self.server, body.get("model")
        time.sleep(srv.delay)
        if self.path not in ("/v1/completions", "/v1/chat/completions"):
            return self._send(404, b'{"error": "no such route"}')
        if mode == "bad":
            return self._send(400, b'{"error": {"message": "unknown model bad"}}')
        if mode == "slow":
            time.sleep(0.5)
        if mode == "notjson":
            return self._send(200, b"hello, I am not JSON")
        if mode == "flaky":
            with srv.lock:
                srv.failures += 1
                fail = srv.failures <= 2
            if fail:
                return self._send(503, b"overloaded", {"Retry-After": "0"})
        chat = self.path.endswith("/chat/completions")
        choices = []
        for i in range(body["n"]):
            text = CANNED[i % len(CANNED)]
            toks = tokens(text)
            assert "".join(toks) == text
            if chat:
                text = "Thought:" + text
                toks = ["Thought", ":", *toks]
                lp = {"content": [{"token": t, "logprob": TOKEN_LP} for t in toks]}
                choice = {"index": i, "message": {"role": "assistant", "content": text}}
            else:
                lp = {"tokens": toks, "token_logprobs": [TOKEN_LP] * len(toks)}
                choice = {"index": i, "text": text}
            choice["logprobs"] = None if mode == "nologprobs" else lp
            choices.append(choice)
        choices.reverse()  # the client must order by index
        return self._send(200, json.dumps({"choices": choices}).encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: list = []
        self.in_flight = self.max_in_flight = self.failures = 0
        self.delay = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def server():
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def shop_state(k: int = 0, admissible=("click[b0a]", "click[back to search]")) -> TextState:
    return TextState(
        "shop", f"train/{k:05d}", "buy a red mug", "[search]",
        history=(("search[mug]", "[b0a] red mug $3"),), admissible=admissible,
    )  # fmt: skip


def span_lp(sample: str, action_text: str) -> float:
    """Expected log-prob: tokens of ``sample`` overlapping the action's span count."""
    start = sample.index(action_text)
    end, pos, total = start + len(action_text), 0, 0.0
    for t in tokens(sample):
        if pos < end and pos + len(t) > start:
            total += TOKEN_LP
        pos += len(t)
    return total


EXPECTED = [
    Candidate("click[b0a]", span_lp(CANNED[0], "click[b0a]")),
    Candidate("search[red mug]", span_lp(CANNED[1], "search[red mug]")),
    Candidate("click[back to search]", span_lp(CANNED[4], "click[back to search]")),
]


def test_completions_batch(server) -> None:
    pol = OpenAICompatiblePolicy(server.url, "canned", api_key="sk-test", temperature=0.7)
    assert isinstance(pol, Policy)
    states = [shop_state(k) for k in range(3)]
    out = pol.propose(states, 5)
    assert out == [EXPECTED] * 3
    assert EXPECTED[0].logprob == 4 * TOKEN_LP  # " click", "[", "b0a", "]"
    assert len(server.requests) == 3
    path, headers, body = server.requests[0]
    assert path == "/v1/completions"
    assert headers["Authorization"] == "Bearer sk-test"
    assert body["model"] == "canned" and body["n"] == 5 and body["temperature"] == 0.7
    assert body["logprobs"] == 1 and body["prompt"].endswith("Thought:")
    assert "Valid actions: click[b0a], click[back to search]" in body["prompt"]
    # n caps the candidates; restrict_to_admissible drops search[red mug].
    assert [len(c) for c in pol.propose(states[:1], 1)] == [1]
    strict = OpenAICompatiblePolicy(server.url, "canned", restrict_to_admissible=True)
    assert [c.text for c in strict.propose(states[:1], 5)[0]] == [
        "click[b0a]",
        "click[back to search]",
    ]


def test_chat_api_and_base_url_with_v1(server) -> None:
    pol = OpenAICompatiblePolicy(server.url + "/v1/", "canned", api="chat")
    out = pol.propose([shop_state()], 5)
    assert out == [EXPECTED]
    path, headers, body = server.requests[-1]
    assert path == "/v1/chat/completions" and "Authorization" not in headers
    assert body["messages"][0]["role"] == "user" and body["logprobs"] is True


def test_greedy_done_states_and_frequency_prior(server) -> None:
    greedy = OpenAICompatiblePolicy(server.url, "canned", greedy=True)
    finished = replace(shop_state(), done=True)
    assert greedy.propose([finished, shop_state()], 5) == [[], [EXPECTED[0]]]
    assert len(server.requests) == 1  # nothing sent for a finished episode
    body = server.requests[0][2]
    assert body["n"] == 1 and body["temperature"] == 0.0
    # Without log-probs the prior is the action's frequency among the n samples.
    pol = OpenAICompatiblePolicy(server.url, "nologprobs", think=False)
    out = pol.propose([shop_state()], 5)[0]
    assert [c.text for c in out] == [c.text for c in EXPECTED]
    assert [c.logprob for c in out] == pytest.approx([math.log(2 / 5), *[math.log(1 / 5)] * 2])
    assert server.requests[-1][2]["stop"] == ["\n"]
    assert server.requests[-1][2]["prompt"].endswith("Action: ")


def test_retries_then_succeeds(server) -> None:
    pol = OpenAICompatiblePolicy(server.url, "flaky", max_retries=3, backoff=0.01)
    assert pol.propose([shop_state()], 5) == [EXPECTED]
    assert len(server.requests) == 3  # two 503s, then the answer


def test_clear_errors(server) -> None:
    with pytest.raises(EndpointError, match=r"refused the request \(HTTP 400: .*unknown model"):
        OpenAICompatiblePolicy(server.url, "bad").propose([shop_state()], 2)
    assert len(server.requests) == 1  # a 400 is not retried
    with pytest.raises(EndpointError, match="not JSON"):
        OpenAICompatiblePolicy(server.url, "notjson").propose([shop_state()], 2)
    slow = OpenAICompatiblePolicy(server.url, "slow", timeout=0.1, max_retries=1, backoff=0.01)
    t0 = time.monotonic()
    with pytest.raises(EndpointError, match="no answer after 2 attempts"):
        slow.propose([shop_state()], 2)
    assert time.monotonic() - t0 < 2.0
    with pytest.raises(ValueError, match="http"):
        OpenAICompatiblePolicy("127.0.0.1:8000", "m")
    with pytest.raises(ValueError, match="api must be"):
        OpenAICompatiblePolicy(server.url, "m", api="embeddings")


def test_connection_refused_is_retried_then_reported() -> None:
    srv = _Server()  # bind a free loopback port, then close it: nothing listens there
    url = srv.url
    srv.server_close()
    pol = OpenAICompatiblePolicy(url, "m", max_retries=2, backoff=0.01, timeout=1.0)
    with pytest.raises(EndpointError, match=r"no answer after 3 attempts.*server running"):
        pol.propose([shop_state()], 1)


def test_concurrency_is_bounded(server) -> None:
    server.delay = 0.05
    pol = OpenAICompatiblePolicy(server.url, "canned", max_workers=3)
    states = [shop_state(k) for k in range(9)]
    out = pol.propose(states, 5)
    assert out == [EXPECTED] * 9
    assert 1 < server.max_in_flight <= 3
