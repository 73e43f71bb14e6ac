"""sample_completions with awkward tokenizers: no bos, an empty prompt, eos id 0, no eos.

The tokenizers are built from a word list (nothing downloads)."""

from __future__ import annotations

import pytest
import torch

from qengine.models import tiny_causal_lm
from qengine.rl import policy_token_logprobs, sample_completions

WORDS = ["</s>", "<pad>", "<unk>", "one", "two", "three", "plus", "is", "?"]


def word_tokenizer(*, eos: str | None = "</s>", pad: str | None = "<pad>") -> object:
    """A word-level tokenizer with no bos and no post-processor; ``WORDS[0]`` has id 0."""
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = {"unk_token": "<unk>"}
    if eos is not None:
        specials["eos_token"] = eos
    if pad is not None:
        specials["pad_token"] = pad
    return PreTrainedTokenizerFast(tokenizer_object=tok, **specials)


def emit_first_token_model(tokenizer, token: int) -> torch.nn.Module:
    """A tiny Llama whose greedy choice is always ``token`` (a biased zero output layer)."""
    model = tiny_causal_lm(tokenizer, hidden_size=16, num_layers=1, num_heads=2, seed=0)
    head = torch.nn.Linear(16, len(tokenizer), bias=True)
    torch.nn.init.zeros_(head.weight)
    with torch.no_grad():
        head.bias.zero_()
        head.bias[token] = 10.0
    model.lm_head = head
    return model


def test_eos_id_zero_ends_the_completion() -> None:
    tok = word_tokenizer()
    assert tok.eos_token_id == 0 and tok.bos_token_id is None
    model = emit_first_token_model(tok, 0)
    roll = sample_completions(model, tok, ["one plus two is ?", "two ?"], do_sample=False)
    assert roll.finished.tolist() == [True, True]
    assert roll.response_mask.sum(1).tolist() == [1, 1]  # just the eos, id 0
    for i, n in enumerate([5, 2]):
        assert int(roll.input_ids[i, n]) == 0 and bool(roll.response_mask[i, n])


def test_empty_prompt_without_bos_gets_a_start_token() -> None:
    tok = word_tokenizer()
    assert tok("", add_special_tokens=True)["input_ids"] == []
    model = emit_first_token_model(tok, WORDS.index("three"))
    roll = sample_completions(model, tok, ["", "one ?"], max_new_tokens=3, do_sample=False)
    assert roll.prompts == ["", "one ?"]
    assert roll.completions == ["three three three"] * 2
    assert int(roll.input_ids[0, 0]) == tok.eos_token_id  # the start token (no bos): eos
    assert roll.response_mask[0].tolist()[:4] == [False, True, True, True]
    assert roll.finished.tolist() == [False, False]
    lp = policy_token_logprobs(model, roll.input_ids, roll.attention_mask, roll.response_mask)
    assert torch.isfinite(lp).all() and (lp[roll.response_mask] < 0).all()


def test_all_prompts_empty_and_no_pad_token() -> None:
    tok = word_tokenizer(pad=None)
    assert tok.pad_token_id is None
    model = emit_first_token_model(tok, WORDS.index("two"))
    roll = sample_completions(model, tok, ["", ""], max_new_tokens=2)
    assert roll.input_ids.shape == (2, 3) and roll.response_mask[:, 1:].all()


def test_missing_eos_is_an_error_or_given() -> None:
    tok = word_tokenizer(eos=None)
    assert tok.eos_token_id is None
    model = emit_first_token_model(tok, WORDS.index("one"))
    with pytest.raises(ValueError, match="no eos_token_id"):
        sample_completions(model, tok, ["two ?"])
    model = emit_first_token_model(tok, WORDS.index("?"))
    roll = sample_completions(
        model, tok, ["two"], do_sample=False, eos_token_id=WORDS.index("?"), max_new_tokens=4
    )
    assert roll.finished.tolist() == [True] and roll.response_mask.sum().item() == 1
