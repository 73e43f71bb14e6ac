"""Chat prompts of text states as token segments, so that a child's prompt extends its parent's.

A state's chat is: a system message (the environment's action grammar), a user message (the
instruction and the first observation), then one assistant message (the action) and one user
message (its observation) per step, ending with the assistant's generation prompt. Its token ids
are a concatenation of *segments*::

    sys = render([system])                       (no generation prompt)
    seg0 = render([system, user0], generation prompt) - sys
    segk = render([system, user0, assistant(a_k), user(o_k)], gen.) - render([system, user0], gen.)

each tokenised on its own (they start after a special token, so this is how the model reads the
whole text; ``sys`` and ``seg0`` are the head's ids split where ``sys`` ends, and stay one
segment when the template does not render ``sys`` as a prefix or the split falls inside a token).
``sys`` is the same for every state of every task of an environment, so its KV is computed once
per search, not once per tree. The prompt of a child is then exactly its parent's ids plus one
segment, which is what lets :class:`~qengine.policies.kv_cache.PrefixKVCache` reuse the parent's
keys and values. The admissible commands are not listed in the chat (past states' lists are not
in a ``TextState``, and listing them would break the prefix property): the actor scores each
admissible command instead of choosing from a list.

Tokenizers without a chat template get :data:`CHATML`, the ChatML layout SmolLM2 also uses.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from qengine.envs.base import TextState

from .react import ActionGrammar

__all__ = ["CHATML", "ChatPrompter"]

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_REPLY = "Reply with exactly one action and nothing else."


class ChatPrompter:
    """Token ids of a state's chat prompt, one segment per step (see the module docstring).

    Args:
      tokenizer: a Hugging Face tokenizer (its chat template, else :data:`CHATML`).
      max_segments: step segments remembered (an LRU keyed by system, first message and step).
    """

    def __init__(self, tokenizer: Any, *, max_segments: int = 4096) -> None:
        self.tokenizer = tokenizer
        self.template = getattr(tokenizer, "chat_template", None) or CHATML
        self.max_segments = int(max_segments)
        self._segments: OrderedDict[tuple[str, ...], list[int]] = OrderedDict()

    def _render(self, messages: list[dict[str, str]]) -> str:
        return str(
            self.tokenizer.apply_chat_template(
                messages, chat_template=self.template, tokenize=False, add_generation_prompt=True
            )
        )

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added)."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @staticmethod
    def head_messages(state: TextState, grammar: ActionGrammar) -> list[dict[str, str]]:
        """The system message and the first user message of ``state``'s chat."""
        system = f"{grammar.description} {_REPLY}"
        user = f"Instruction: {state.instruction}\n\n{state.first_observation}"
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def _cached_head(
        self, key: tuple[str, str], head: list[dict[str, str]], text: str
    ) -> list[list[int]]:
        """The system segment and the first user message's, or both as one segment."""
        ids = self._cached(("head", *key), lambda: self.encode(text))
        system = str(
            self.tokenizer.apply_chat_template(
                head[:1], chat_template=self.template, tokenize=False, add_generation_prompt=False
            )
        )
        if not system or not text.startswith(system) or len(system) == len(text):
            return [ids]
        sys_ids = self._cached(("system", key[0]), lambda: self.encode(system))
        if ids[: len(sys_ids)] != sys_ids:  # the split would tokenise differently
            return [ids]
        return [sys_ids, ids[len(sys_ids) :]]

    def _cached(self, key: tuple[str, ...], make: Any) -> list[int]:
        ids = self._segments.get(key)
        if ids is None:
            ids = make()
            self._segments[key] = ids
            if len(self._segments) > self.max_segments:
                self._segments.popitem(last=False)
        else:
            self._segments.move_to_end(key)
        return ids

    def segments(self, state: TextState, grammar: ActionGrammar) -> list[list[int]]:
        """``2 + depth`` token-id segments whose concatenation is the state's prompt: the
        system message, the first user message, one per step (``1 + depth`` when the template
        cannot split the first two, see the module docstring)."""
        head = self.head_messages(state, grammar)
        base_key = (head[0]["content"], head[1]["content"])
        base_text = self._render(head)
        out = list(self._cached_head(base_key, head, base_text))
        for action, observation in state.history:

            def make(a: str = action, o: str = observation) -> list[int]:
                full = self._render(
                    [*head, {"role": "assistant", "content": a}, {"role": "user", "content": o}]
                )
                if not full.startswith(base_text):
                    raise ValueError(
                        "the chat template does not render a conversation as its prefix plus "
                        "the new messages; KV reuse needs one that does (e.g. ChatML)"
                    )
                return self.encode(full[len(base_text) :])

            out.append(self._cached((*base_key, action, observation), make))
        return out

    def action_ids(self, action: str) -> list[int]:
        """Token ids of ``action`` as the assistant's whole message: its text, then the token
        that ends the message (the tokenizer's eos; ``<|im_end|>`` for ChatML)."""
        ids = self.encode(action)
        end = self.end_id()
        return ids + ([end] if end is not None else [])

    def end_id(self) -> int | None:
        """The id ending an assistant message: ``<|im_end|>`` when the vocabulary has it, else
        the eos id."""
        vocab_id = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        unk = getattr(self.tokenizer, "unk_token_id", None)
        if isinstance(vocab_id, int) and vocab_id != unk:
            return vocab_id
        eos = self.tokenizer.eos_token_id
        return None if eos is None else int(eos)


def flatten(segments: Sequence[Sequence[int]]) -> list[int]:
    """The prompt ids: the segments, concatenated."""
    return [i for seg in segments for i in seg]
