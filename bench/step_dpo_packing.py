"""Step-DPO training time with each state's prompt packed once vs one sequence per action.

The demo's preference pairs (``max_all``: a state's best action vs each worse one) share long
prompts: packing runs a state's prompt once under a tree attention mask
(``qengine.train.packing``); the baseline, measured in the same run on the same pairs, runs each
pair's chosen and rejected sequence separately. Both train the demo's tiny Llama for one epoch
through ``train_step_dpo`` (reference log-probs, training, held-out evaluation: all of it).

Usage: python bench/step_dpo_packing.py [--tasks 150] [--hidden 64 128] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine_info import machine

from qengine.envs import make_env
from qengine.models import build_word_tokenizer, tiny_causal_lm
from qengine.pipeline import (
    PipelineSettings,
    collect_settings,
    preference_pairs,
    q_model_texts,
)
from qengine.policies import ScriptedPolicy
from qengine.search import collect
from qengine.train import StepDPOConfig, encode_completions, train_step_dpo
from qengine.train.packing import group_by_state


def demo_pairs(tasks: int) -> list[dict]:
    """Pairs of the demo's settings over the first ``tasks`` shop training tasks."""
    s = PipelineSettings(train_tasks=tasks)
    env = make_env(s.env)
    with tempfile.TemporaryDirectory() as out:
        collect(
            env,
            ScriptedPolicy(env, p=s.expert_p, seed=s.seed),
            env.task_ids("train")[:tasks],
            settings=collect_settings(s),
            out_dir=out,
            progress=False,
        )
        return preference_pairs(out, s)


def tokens_per_epoch(tokenizer, records, cfg: StepDPOConfig, packed: bool) -> int:
    """Non-padding tokens the model runs through in one epoch of ``records``."""
    if packed:  # each state: its (truncated) prompt once, then every action + eos
        total = 0
        for group in group_by_state(records, cfg.prompt_style):
            prompt = len(tokenizer(group.prompt)["input_ids"])
            actions = [
                len(tokenizer(a, add_special_tokens=False)["input_ids"]) + 1 for a in group.actions
            ]
            total += min(prompt, cfg.max_length - max(actions)) + sum(actions)
        return total
    from qengine.train.step_dpo import _styled_texts

    prompts, completions = _styled_texts(records, cfg.prompt_style)
    batch = encode_completions(tokenizer, prompts, completions, max_length=cfg.max_length)
    return int(batch.attention_mask.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=150, help="shop training tasks searched")
    parser.add_argument("--hidden", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    s = PipelineSettings()
    records = demo_pairs(args.tasks)
    tokenizer = build_word_tokenizer(q_model_texts(records, s))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    base = StepDPOConfig(
        num_train_epochs=1,
        learning_rate=s.learning_rate,
        per_device_train_batch_size=16,
        max_length=s.max_length,
        prompt_style=s.prompt_style,
    )
    states = len({r["prompt"] for r in records})
    print(f"{len(records)} pairs over {states} states, device {device}")
    rows = []
    for hidden in args.hidden:
        for packed in (False, True):
            cfg = replace(base, pack_prefixes=packed)
            model = tiny_causal_lm(tokenizer, hidden_size=hidden, seed=0).to(device)
            start = time.perf_counter()
            history = train_step_dpo(model, tokenizer, records, config=cfg, progress=False)
            wall = time.perf_counter() - start
            rows.append(
                {
                    "hidden": hidden,
                    "packed": packed,
                    "wall_s": wall,
                    "pairs_per_s": len(records) / wall,
                    "tokens_per_epoch": tokens_per_epoch(tokenizer, records, cfg, packed),
                    "held_out_accuracy": history["eval_after"].get("accuracy"),
                }
            )
            r = rows[-1]
            print(
                f"hidden {hidden:4d}  {'packed  ' if packed else 'per-pair'}  "
                f"wall {wall:7.1f} s  {r['pairs_per_s']:7.1f} pairs/s  "
                f"tokens/epoch {r['tokens_per_epoch']:>9,d}  "
                f"held-out acc {r['held_out_accuracy']:.3f}"
            )
        unpacked, packed_row = rows[-2], rows[-1]
        print(f"hidden {hidden:4d}  speed-up {unpacked['wall_s'] / packed_row['wall_s']:.2f}x")
    if args.json:
        info = machine()
        info["device"] = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
        info["torch_threads"] = torch.get_num_threads()
        result = {"machine": info, "pairs": len(records), "states": states, "rows": rows}
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
