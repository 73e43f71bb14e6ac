"""``OpenAICompatiblePolicy``: the policy interface over an OpenAI-compatible HTTP endpoint.

Works with any server that speaks the OpenAI API (vLLM's ``vllm serve``, llama.cpp's server,
TGI, SGLang, OpenAI itself), through the standard library only (``urllib``), so it adds no
dependency.

* ``api="completions"`` (default): ``POST {base_url}/v1/completions`` with the ReAct prompt of
  :mod:`qengine.policies.react`, ``n`` samples and ``logprobs=1``;
* ``api="chat"``: ``POST {base_url}/v1/chat/completions`` with the prompt as one user message
  and ``logprobs=true``.

One request per live state (``n`` samples each), up to ``max_workers`` in flight at once.
Connection errors, timeouts and HTTP 408/409/429/5xx are retried ``max_retries`` times with
exponential backoff (``backoff · 2^attempt`` seconds, or the server's ``Retry-After``); other
HTTP errors raise :class:`EndpointError` at once with the server's message.

Log-probs: a candidate's ``logprob`` is the sum of the server-reported log-probs of the sampled
tokens that overlap the action's text in the first sample that produced it (a token straddling
the action's edge, such as ``" click"``, counts whole). Servers report these under their own
convention (vLLM: the model's distribution before temperature by default; OpenAI: after). When a
server returns no log-probs, the prior is the action's frequency among the ``n`` samples,
``log(count / n)``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from qengine.envs.base import TextState

from .base import Candidate
from .react import ActionGrammar, build_prompt, candidates_from_samples, grammar_for

__all__ = ["EndpointError", "OpenAICompatiblePolicy"]

_RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
_APIS = ("completions", "chat")


class EndpointError(RuntimeError):
    """The endpoint refused a request, answered nonsense, or could not be reached."""


def _endpoint(base_url: str, api: str) -> str:
    base = base_url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
    if not base.endswith("/v1"):
        base += "/v1"
    return base + ("/completions" if api == "completions" else "/chat/completions")


class OpenAICompatiblePolicy:
    """Propose ReAct actions with a model served behind an OpenAI-compatible API.

    Args:
        base_url: the server, e.g. ``"http://127.0.0.1:8000"`` (``/v1`` is appended if missing).
        model: the served model name sent in each request.
        api_key: sent as ``Authorization: Bearer <api_key>`` when given.
        api: ``"completions"`` or ``"chat"``.
        temperature, top_p: sampling parameters; ``temperature=0`` or ``greedy=True`` asks for a
            single greedy sample per state.
        max_tokens: cap on generated tokens per sample.
        think: ReAct prompting (thought, then action) or the action alone.
        timeout: seconds per HTTP request.
        max_retries, backoff: retry policy (see the module docstring).
        max_workers: concurrent requests.
        restrict_to_admissible: keep only actions among the state's admissible ones (when known).
        grammars: per-environment :class:`~qengine.policies.react.ActionGrammar` overrides.
        extra_body: additional JSON fields for every request (e.g. ``{"seed": 0}``).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        api: str = "completions",
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_tokens: int = 64,
        greedy: bool = False,
        think: bool = True,
        timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_workers: int = 8,
        restrict_to_admissible: bool = False,
        grammars: Mapping[str, ActionGrammar] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        if api not in _APIS:
            raise ValueError(f"api must be one of {_APIS}, got {api!r}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if max_tokens < 1 or max_workers < 1 or max_retries < 0 or timeout <= 0:
            raise ValueError(
                "need max_tokens >= 1, max_workers >= 1, max_retries >= 0 and timeout > 0"
            )
        self.url = _endpoint(base_url, api)
        self.model = model
        self.api_key = api_key
        self.api = api
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.max_tokens = int(max_tokens)
        self.greedy = bool(greedy) or self.temperature == 0.0
        self.think = bool(think)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_workers = int(max_workers)
        self.restrict_to_admissible = bool(restrict_to_admissible)
        self.grammars = dict(grammars or {})
        self.extra_body = dict(extra_body or {})

    # ------------------------------------------------------------------ HTTP
    def _post(self, body: Mapping[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last: str = ""
        for attempt in range(self.max_retries + 1):
            delay = self.backoff * (2**attempt)
            req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    raw = resp.read()
            except urllib.error.HTTPError as e:
                detail = e.read()[:500].decode(errors="replace")
                last = f"HTTP {e.code}: {detail}"
                if e.code not in _RETRY_STATUS:
                    raise EndpointError(f"{self.url} refused the request ({last})") from e
                retry_after = e.headers.get("Retry-After") if e.headers else None
                if retry_after and retry_after.replace(".", "", 1).isdigit():
                    delay = min(float(retry_after), 60.0)
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
                last = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
            else:
                try:
                    return json.loads(raw)
                except ValueError as e:
                    raise EndpointError(
                        f"{self.url} answered with something that is not JSON: {raw[:200]!r}"
                    ) from e
            if attempt < self.max_retries:
                time.sleep(delay)
        raise EndpointError(
            f"{self.url}: no answer after {self.max_retries + 1} attempts (last error: {last}); "
            "is the server running and the base_url right?"
        )

    def _request(self, prompt_text: str, k: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "n": k,
            "max_tokens": self.max_tokens,
            "temperature": 0.0 if self.greedy else self.temperature,
            "top_p": 1.0 if self.greedy else self.top_p,
        }
        if self.api == "completions":
            body["prompt"] = prompt_text
            body["logprobs"] = 1
            body["stop"] = ["\nObservation", "\nInstruction"] if self.think else ["\n"]
        else:
            body["messages"] = [{"role": "user", "content": prompt_text}]
            body["logprobs"] = True
        body.update(self.extra_body)
        return self._post(body)

    # --------------------------------------------------------------- propose
    def _chat_prompt(self, head: str) -> str:
        if self.think:
            return head + "Reply with 'Thought: <your reasoning>' and then 'Action: <action>'."
        return head + "Reply with 'Action: <action>' only."

    def _choices(self, resp: Mapping[str, Any]) -> list[tuple[str, list[str] | None, list]]:
        """(text, token texts or None, token log-probs) per choice, in index order."""
        choices = resp.get("choices") if isinstance(resp, Mapping) else None
        if not isinstance(choices, list):
            raise EndpointError(f"{self.url}: response has no 'choices' list: {str(resp)[:200]}")
        out = []
        for ch in sorted(choices, key=lambda c: c.get("index", 0)):
            lp = ch.get("logprobs") or {}
            if self.api == "completions":
                text = ch.get("text")
                toks, vals = lp.get("tokens"), lp.get("token_logprobs")
            else:
                text = (ch.get("message") or {}).get("content")
                content = lp.get("content") if isinstance(lp, Mapping) else None
                toks = [c.get("token", "") for c in content] if content else None
                vals = [c.get("logprob") for c in content] if content else None
            if not isinstance(text, str):
                continue
            if not toks or not vals or len(toks) != len(vals) or not "".join(toks).startswith(text):
                toks, vals = None, []  # no usable per-token log-probs
            out.append((text, toks, vals))
        return out

    def _propose_one(self, state: TextState, n: int) -> list[Candidate]:
        grammar = grammar_for(state.env_name, self.grammars)
        prompt = build_prompt(state, grammar, think=self.think)
        k = 1 if self.greedy else n
        if self.api == "completions":
            text_in, tail = prompt.text, prompt.tail
        else:
            text_in, tail = self._chat_prompt(prompt.head), ""
        samples = self._choices(self._request(text_in, k))
        return candidates_from_samples(
            state, grammar, tail, samples, n, restrict_to_admissible=self.restrict_to_admissible
        )

    def propose(self, states: Sequence[TextState], n: int) -> list[list[Candidate]]:
        """``B`` lists of at most ``n`` distinct parsed actions, one request per live state."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        out: list[list[Candidate]] = [[] for _ in states]
        live = [i for i, s in enumerate(states) if not s.done]
        if not live:
            return out
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(live))) as pool:
            results = pool.map(lambda i: self._propose_one(states[i], n), live)
            for i, cands in zip(live, results, strict=True):
                out[i] = cands
        return out

    def act(self, states: Sequence[TextState]) -> list[str | None]:
        """One action per state (``None`` for a finished episode or no parseable sample)."""
        return [c[0].text if c else None for c in self.propose(states, 1)]
