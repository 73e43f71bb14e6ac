"""What SmolLM2's real tokenizer exposes that the tiny word-level one hid: no BOS, pad = eos
(``<|im_end|>``), a chat template, sub-word tokens. Each place that tokenises is checked on it."""

from __future__ import annotations

import torch

from qengine.models import build_word_tokenizer
from qengine.models.causal_lm import keep_recent, pad_id, special_prefix
from qengine.train import encode_completions
from qengine.train.packing import StateGroup, encode_packed

LONG = "Instruction: find the red mug. " + "You are in a room with a table and a chair. " * 30


def test_smollm2_adds_no_bos_and_pads_with_eos(smollm2) -> None:
    _, tok = smollm2
    assert tok("go north")["input_ids"] == tok("go north", add_special_tokens=False)["input_ids"]
    assert special_prefix(tok) == 0
    assert tok.pad_token_id == tok.eos_token_id == pad_id(tok)
    assert tok.convert_ids_to_tokens(tok.eos_token_id) == "<|im_end|>"
    tiny = build_word_tokenizer(["go north"])
    assert special_prefix(tiny) == 1  # its "<s>"


def test_keep_recent_keeps_only_the_special_prefix() -> None:
    ids = list(range(10))
    assert keep_recent(ids, 4, head=0) == [6, 7, 8, 9]
    assert keep_recent(ids, 4, head=1) == [0, 7, 8, 9]
    assert keep_recent(ids, 20, head=1) == ids


def test_encode_completions_truncates_without_a_bos(smollm2) -> None:
    """The truncated prompt is the most recent tokens alone: its first token is no longer
    mistaken for a BOS and kept; padding is eos, masked out."""
    _, tok = smollm2
    batch = encode_completions(tok, [LONG, "short"], ["take mug", "go north"], max_length=40)
    p_ids = tok(LONG)["input_ids"]
    c_ids = tok("take mug", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    keep = 40 - len(c_ids)
    assert batch.input_ids[0].tolist() == p_ids[-keep:] + c_ids
    assert batch.completion_mask[0].sum() == len(c_ids)
    row = batch.attention_mask[1].bool()
    assert (batch.input_ids[1][~row] == tok.eos_token_id).all()
    short = tok("short")["input_ids"] + tok("go north", add_special_tokens=False)["input_ids"]
    assert batch.input_ids[1][row].tolist() == [*short, tok.eos_token_id]


def test_packing_truncates_without_a_bos(smollm2) -> None:
    _, tok = smollm2
    group = StateGroup(prompt=LONG, actions=["take mug", "go north"], pairs=[(0, 0, 1)])
    batch = encode_packed(tok, [group], max_length=40)
    p_ids = tok(LONG)["input_ids"]
    longest = max(len(tok(a, add_special_tokens=False)["input_ids"]) + 1 for a in group.actions)
    kept = p_ids[-(40 - longest) :]
    assert batch.input_ids[0, : len(kept)].tolist() == kept


def test_chat_segments_extend_the_parent_prompt(smollm2) -> None:
    """With the real chat template, a child's prompt is its parent's plus one segment, and the
    segments decode to exactly the template's rendering of the whole conversation."""
    from qengine.envs import TextState
    from qengine.policies.chat import ChatPrompter, flatten
    from qengine.policies.react import grammar_for

    _, tok = smollm2
    prompter = ChatPrompter(tok)
    grammar = grammar_for("textworld")
    parent = TextState("textworld", "t/0", "Find the coin.", "-= Office =-\nExits: north.",
                       history=(("go north", "-= Hall =-\nA coin."),))  # fmt: skip
    step = ("take coin", "Won.")
    child = TextState(parent.env_name, parent.task_id, parent.instruction,
                      parent.first_observation, history=(*parent.history, step))  # fmt: skip
    p_segs, c_segs = prompter.segments(parent, grammar), prompter.segments(child, grammar)
    assert c_segs[:-1] == p_segs
    messages = ChatPrompter.head_messages(child, grammar)
    for action, obs in child.history:
        messages += [{"role": "assistant", "content": action}, {"role": "user", "content": obs}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert tok.decode(flatten(c_segs)) == text
    assert text.endswith("<|im_start|>assistant\n")
    # The action's own ids: its text and <|im_end|>, as inside the child's segment.
    assert c_segs[-1][: len(prompter.action_ids("take coin"))] == prompter.action_ids("take coin")


def test_react_scoring_splits_subword_actions(smollm2) -> None:
    """HFPolicy's ReAct scoring (offsets) counts exactly the action's tokens with BPE, where the
    space before an action is part of its first token."""
    from qengine.policies import HFPolicy

    model, tok = smollm2
    policy = HFPolicy(model, tok, chat=False, think=False)
    ids, n_act = policy._split("Action: ", "click[red mug]")
    assert tok.decode(ids[-n_act:]).strip() == "click[red mug]"
    assert ids[: len(ids) - n_act] == tok("Action:", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        (score,) = policy.score([("Action: ", "click[red mug]")])
    assert score < 0
