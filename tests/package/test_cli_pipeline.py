"""`qengine collect | pairs | train-q | evaluate`, chained for real on a few shop tasks."""

from __future__ import annotations

import json
from pathlib import Path

from qengine.cli import main


def test_collect_pairs_train_q_evaluate(tmp_path: Path, capsys) -> None:
    trees, pairs, qmodel = tmp_path / "trees", tmp_path / "pairs.jsonl", tmp_path / "qmodel"
    common = ["--env", "shop", "--no-progress"]
    assert (
        main(["collect", *common, "--tasks", "4", "--iterations", "12", "--out", str(trees)]) == 0
    )
    assert main(["pairs", str(trees), "--out", str(pairs), "--mode", "max_all"]) == 0
    records = [json.loads(line) for line in pairs.read_text().splitlines()]
    assert records and {"prompt", "chosen", "rejected"} <= set(records[0])
    assert {r["env"] for r in records} == {"shop"}  # whose rendering hooks style the prompts
    capsys.readouterr()
    train = ["train-q", str(pairs), "--model", "tiny", "--out", str(qmodel), "--epochs", "1"]
    style = ["--prompt-style", "compact-marked-visited-price", "--hidden-size", "32"]
    assert main([*train, *style, "--max-length", "256", "--no-progress"]) == 0
    history = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(history) == {"eval_before", "eval_after"}
    meta = json.loads((qmodel / "qengine_qmodel.json").read_text())
    assert meta["prompt_style"] == "compact-marked-visited-price" and meta["max_length"] == 256
    assert meta["env"] == "shop"  # its prompts are styled with the shop's rendering hooks
    assert meta["history"]["config"]["pack_prefixes"] is True
    evaluate = ["evaluate", *common, "--split", "test", "--tasks", "2", "--q-model", str(qmodel)]
    assert main([*evaluate, "--avoid-repeats", "--out", str(tmp_path / "eval")]) == 0
    table = capsys.readouterr().out
    assert "Q-guided " in table and "Q-guided, no repeats" in table
    saved = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert list(saved) == ["base", "best-of-n (log-prob)", "Q-guided", "Q-guided, no repeats"]
    capsys.readouterr()
    assert main(["evaluate", *common, "--tasks", "2", "--avoid-repeats"]) == 2
    assert "--avoid-repeats needs --q-model" in capsys.readouterr().err


def test_demo_without_the_training_stack_says_what_to_install(monkeypatch, capsys) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "transformers" else real(name)
    )
    assert main(["demo", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "needs transformers: pip install 'qengine[train]'" in err and len(err.splitlines()) == 1
