"""Helpers shared by the policy tests (a uniquely named module: tests have no packages).

``train_react_model`` fine-tunes a tiny word-level Llama for a few seconds on ReAct completions of
``shop`` states, so that it really emits ``Thought: ... Action: click[...]`` (a random model only
emits garbage, which the policies must drop).
"""

from __future__ import annotations

from pathlib import Path

from qengine.envs import TextState, make_env
from qengine.policies.react import ActionGrammar, build_prompt, grammar_for

SHOP_KW = dict(seed=3, num_train=20, num_test=10, products_per_category=10, page_size=2)

# A short preamble keeps the trained model's prompts (and its training) small.
SHORT_GRAMMARS = {
    "shop": ActionGrammar("Shop: search[query] or click[x].", verbs=("search", "click"))
}


def shop_states(num_tasks: int = 4) -> list[TextState]:
    """Per task: the search page (free-form) and the results page after the expert's search."""
    env = make_env("shop", **SHOP_KW)
    states = []
    for tid in env.task_ids("train")[:num_tasks]:
        states.append(env.reset(tid))
        env.step(env.oracle_action())
        states.append(env.state())
    return states


def targets(state: TextState) -> list[str]:
    """Actions the trained model learns to propose at ``state`` (several, so samples differ)."""
    if state.admissible:
        return list(state.admissible[-2:])  # the two item clicks
    words = state.instruction.split()
    return [f"search[{' '.join(words[3:5])}]", f"search[{' '.join(words[3:6])}]"]


def training_texts(states: list[TextState]) -> list[tuple[str, str]]:
    """(prompt, completion) pairs in both prompt modes."""
    pairs = []
    for s in states:
        g = grammar_for(s.env_name, SHORT_GRAMMARS)
        for a in targets(s):
            pairs.append((build_prompt(s, g, think=True).text, f" i will act . Action: {a}"))
            pairs.append((build_prompt(s, g, think=False).text, a))
    return pairs


def train_react_model(out_dir: Path, states: list[TextState], *, steps: int = 50) -> Path:
    """Build, fine-tune (loss on the completions only) and save a tiny model; return its dir."""
    import torch

    from qengine.models import build_word_tokenizer, tiny_causal_lm

    pairs = training_texts(states)
    tok = build_word_tokenizer([p + " " + c for p, c in pairs] + ["garbage"])
    model = tiny_causal_lm(tok, hidden_size=32, num_layers=2, num_heads=2, seed=0)
    rows = []
    for p, c in pairs:
        p_ids = tok(p)["input_ids"]
        c_ids = [*tok(c, add_special_tokens=False)["input_ids"], tok.eos_token_id]
        rows.append((p_ids + c_ids, len(p_ids)))
    width = max(len(r) for r, _ in rows)
    ids = torch.full((len(rows), width), tok.pad_token_id)
    labels = torch.full((len(rows), width), -100)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (r, plen) in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        labels[i, plen : len(r)] = torch.tensor(r[plen:])
        mask[i, : len(r)] = 1
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # pytest -n 2 runs one process per core
    try:
        for _ in range(steps):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir
