"""GenerativeCritic: prompt assembly, in-context ring buffer, parsing counters, HF generation."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from critics_helpers import COLOURS, CannedGenerator, colour_state

from qengine.critics import FAILURES, GenerativeCritic, HFGenerator, InContextSample
from qengine.data.prompts import render_state
from qengine.models import build_word_tokenizer, tiny_causal_lm

STATE = (
    "Instruction: buy a red mug\nObservation: home\nAction: search[mug]\n"
    "Observation: a red mug\nAction: "
)


def test_values_are_parsed_averaged_and_counted() -> None:
    gen = CannedGenerator(
        ["I think so. Value: 0.2", "Value = .4", "garbage",  # state 0: mean of 0.2, 0.4
         "Value: 1.7", "", "Value: nan"]  # state 1: 1.7 clipped to 1
    )  # fmt: skip
    critic = GenerativeCritic(generate_fn=gen, num_samples=3)
    values = critic.score([STATE, STATE])
    np.testing.assert_allclose(values, [0.3, 1.0])
    assert values.dtype == np.float64
    assert critic.parse_failures == 3 and critic.clipped == 1 and critic.fallbacks == 0
    assert critic.generations == 6 and critic.calls == 1 and critic.states_scored == 2
    assert critic.status_counts == {"ok": 2, "clipped": 1, "missing": 2, "nonfinite": 1}
    assert critic.calls_per_state == 3
    assert [p.status for p in critic.last_parsed[1]] == ["clipped", "missing", "nonfinite"]


def test_fallback_when_nothing_parses() -> None:
    critic = GenerativeCritic(generate_fn=CannedGenerator(default="no idea"), k=3)
    assert critic.score([STATE])[0] == 0.5  # empty buffer: the middle of the range
    critic.observe(STATE, "click[buy now]", 1.0)
    critic.observe(STATE, "click[< prev]", 0.0)
    critic.observe(STATE, "click[buy now]", 0.8)
    assert critic.score([STATE])[0] == pytest.approx(0.6)  # the actor's recent mean outcome
    assert critic.fallbacks == 2 and critic.parse_failures == 2
    fixed = GenerativeCritic(generate_fn=CannedGenerator(default=""), fallback=0.1)
    assert fixed.score([STATE])[0] == pytest.approx(0.1)
    ranged = GenerativeCritic(generate_fn=CannedGenerator(default=""), value_range=(-1, 3))
    assert ranged.score([STATE])[0] == pytest.approx(1.0)


def test_in_context_buffer_keeps_the_k_most_recent() -> None:
    gen = CannedGenerator()
    critic = GenerativeCritic(generate_fn=gen, k=3)
    for i in range(5):
        critic.observe(f"Instruction: task {i}\nObservation: page {i}\nAction: ", f"act{i}", i / 4)
    assert [s.action for s in critic.context] == ["act2", "act3", "act4"]
    assert critic.context[0] == InContextSample(
        "Instruction: task 2 Observation: page 2", "act2", 0.5
    )
    critic.score([STATE], actions=["click[red mug]"])
    prompt = gen.prompts[-1]
    assert "act0" not in prompt and "act1" not in prompt
    order = [prompt.index(f"Action: act{i}") for i in (2, 3, 4)]
    assert order == sorted(order)  # oldest first
    assert "Outcome: 0.75" in prompt and "Outcome: 1.00" in prompt
    # The current state comes after the examples, compact, without the trailing "Action:" cue.
    tail = prompt[prompt.index("Current state:") :]
    assert "Previous actions: search[mug]" in tail and "Observation: a red mug" in tail
    assert "Proposed action: click[red mug]" in tail
    assert prompt.endswith('end with one line "Value: <number>".\nReasoning:')
    critic.clear_context()
    critic.score([STATE])
    assert "Recent attempts" not in gen.prompts[-1] and "Proposed action" not in gen.prompts[-1]
    none = GenerativeCritic(generate_fn=gen, k=0)
    none.observe(STATE, "x", 1.0)
    assert none.context == []


def test_summaries_are_short_and_states_may_be_text_states(shop) -> None:
    critic = GenerativeCritic(generate_fn=CannedGenerator(), summary_chars=60)
    state = shop.reset(shop.task_ids("train")[0])
    critic.observe(state, "search[mug]", 0.0)
    summary = critic.context[0].state
    assert len(summary) <= 60 and " ... " in summary and summary.startswith("Instruction:")
    assert critic.build_prompt(state) == critic.build_prompt(render_state(state))


def test_bad_input_is_explained(tmp_path) -> None:
    critic = GenerativeCritic(generate_fn=CannedGenerator())
    with pytest.raises(ValueError, match="at least one"):
        critic.score([])
    with pytest.raises(TypeError, match="not one string"):
        critic.score(STATE)
    with pytest.raises(ValueError, match="one action per state"):
        critic.score([STATE, STATE], actions=["a"])
    with pytest.raises(ValueError, match="finite"):
        critic.observe(STATE, "a", float("nan"))
    with pytest.raises(TypeError, match="either a model"):
        GenerativeCritic()
    with pytest.raises(TypeError, match="either a model"):
        GenerativeCritic("somewhere", generate_fn=CannedGenerator())
    with pytest.raises(FileNotFoundError, match="local model checkpoint"):
        GenerativeCritic(tmp_path / "missing")
    with pytest.raises(ValueError, match="value_range"):
        GenerativeCritic(generate_fn=CannedGenerator(), value_range=(1, 0))

    def wrong(prompts, n):
        return [["Value: 0.5"] * n]  # one list whatever the number of prompts

    with pytest.raises(ValueError, match="generate_fn must return 2 lists"):
        GenerativeCritic(generate_fn=wrong).score([STATE, STATE])
    assert critic.calls == 0  # nothing was counted for refused calls


# ---------------------------------------------------------------- a real (random) tiny model
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    rng = random.Random(0)
    texts = [colour_state(c, rng) for c in COLOURS] + [STATE, "Value: 0.5 reasoning critic"]
    tok = build_word_tokenizer(texts)
    tok.padding_side = "left"
    model = tiny_causal_lm(tok, hidden_size=32, num_layers=1, num_heads=2, seed=1)
    out = tmp_path_factory.mktemp("critic_lm")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return model.eval(), tok, out


def test_a_random_model_writes_garbage_and_the_critic_survives(tiny) -> None:
    model, tok, _ = tiny
    critic = GenerativeCritic(model, tok, max_new_tokens=8, batch_size=2)
    rng = random.Random(1)
    states = [colour_state(c, rng) * (1 + i) for i, c in enumerate(COLOURS[:3])]
    values = critic.score(states)
    assert values.shape == (3,) and np.isfinite(values).all()
    assert ((values >= 0) & (values <= 1)).all()
    assert critic.generations == 3
    assert sum(critic.status_counts.values()) == 3
    assert critic.parse_failures == sum(critic.status_counts[f] for f in FAILURES)
    assert critic.fallbacks == sum(all(p.failed for p in row) for row in critic.last_parsed)
    # Left padding: a state's greedy text does not depend on the batch it is in.
    alone = GenerativeCritic(model, tok, max_new_tokens=8)
    alone.score(states[:1])
    assert alone.last_outputs[0] == critic.last_outputs[0]


def test_sampling_averages_several_samples_from_a_checkpoint_dir(tiny) -> None:
    _, _, path = tiny
    torch.manual_seed(0)
    critic = GenerativeCritic(path, greedy=False, num_samples=2, max_new_tokens=4)
    values = critic.score([STATE, STATE, STATE])
    assert values.shape == (3,) and critic.generations == 6
    assert all(len(row) == 2 for row in critic.last_outputs)
    with pytest.raises(ValueError, match="greedy"):
        GenerativeCritic(path, num_samples=2)


def test_long_prompts_keep_their_end(tiny) -> None:
    model, tok, _ = tiny
    gen = HFGenerator(model, tok, max_new_tokens=3, max_prompt_tokens=6)
    long_prompt = STATE * 20
    (texts,) = gen([long_prompt], 1)
    end = tok(long_prompt)["input_ids"]
    short = tok.decode(end[:1] + end[-5:], skip_special_tokens=True)
    assert texts == gen([short], 1)[0]  # the same 6 tokens went in
    with pytest.raises(ValueError, match="temperature"):
        HFGenerator(model, tok, temperature=0.0)
