"""The tree store's write protocol: staged names, the write log, no rewrite, cleaning."""

from __future__ import annotations

from search_helpers import run_case

from qengine.search import TreeStore


def test_a_complete_tree_is_never_rewritten_and_each_write_is_logged(tmp_path) -> None:
    run_case("shop_value_fn", tmp_path)
    store = TreeStore(tmp_path)
    assert sorted(w["index"] for w in store.writes()) == sorted(store.done())
    tree = store.read(1)
    before = (store.dir / "00001.safetensors").read_bytes()
    arrays = {k: v.copy() for k, v in tree.arrays.items()}
    arrays["visits"][0] += 1  # a different tree under the same index
    assert not store.write(1, tree.header, tree.texts, arrays, tree.config)
    assert (store.dir / "00001.safetensors").read_bytes() == before
    assert len(store.writes()) == len(store.done())


def test_clean_removes_what_a_killed_writer_left(tmp_path) -> None:
    run_case("shop_value_fn", tmp_path)
    store = TreeStore(tmp_path)
    staged = [store.dir / "00002.123-abcd.safetensors.tmp", store.dir / "00009.7-ef.jsonl.tmp"]
    orphan = store.dir / "00009.jsonl"  # its arrays were never renamed into place
    for path in [*staged, orphan]:
        path.write_text("half")
    done = store.done()
    assert sorted(store.clean()) == sorted([*staged, orphan])
    assert store.done() == done and not list(store.dir.glob("*.tmp")) and not orphan.exists()
    assert {int(p.stem) for p in store.dir.glob("*.jsonl")} == done
