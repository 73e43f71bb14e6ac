"""The saved-forest file (docs/search-semantics.md, 5.9): deterministic bytes, a checksum that
refuses every damaged or edited file, and files of the previous format still loading."""

from __future__ import annotations

import json
import pickle
import struct
import subprocess
import sys

import numpy as np
import pytest
from core_helpers import assert_arrays_equal, core_settings
from hypothesis import given
from hypothesis import strategies as st

from qengine import Forest, SearchConfig
from qengine._forest_file import FORMAT, FORMAT_V1

ENGINES = ("native", "reference")


def searched(engine: str, *, seed: int = 0, num_trees: int = 3, in_flight: bool = True) -> Forest:
    config = SearchConfig(rule="lats", qnorm="tree_minmax", seed=7, max_nodes=500)
    forest = Forest(num_trees, config, root_payloads=np.arange(num_trees) + 5, engine=engine)
    forest.run_synthetic(12, 3, leaves_per_ask=2, seed=seed)
    if in_flight:
        forest.ask(2)
    return forest


def header(data: bytes) -> tuple[int, dict]:
    (n,) = struct.unpack("<Q", data[:8])
    return n, json.loads(data[8 : 8 + n])


def write_header(data: bytes, new_header: dict) -> bytes:
    n, _ = header(data)
    text = json.dumps(new_header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data[8 + n :]


@pytest.mark.parametrize("engine", ENGINES)
def test_two_saves_are_byte_identical_whoever_writes_them(engine, tmp_path):
    forest = searched(engine)
    forest.save(tmp_path / "a.safetensors")
    forest.save(tmp_path / "b.safetensors")
    other = Forest.from_arrays(
        forest.export_arrays(),
        forest.config,
        engine="reference" if engine == "native" else "native",
    )
    other.save(tmp_path / "c.safetensors")
    Forest.load(tmp_path / "a.safetensors", engine=engine).save(tmp_path / "d.safetensors")
    pickle.loads(pickle.dumps(forest)).save(tmp_path / "e.safetensors")
    # another process (the safetensors writer ordered its metadata by a per-process hash seed)
    code = (
        "import sys, qengine; "
        "qengine.Forest.load(sys.argv[1], engine=sys.argv[3]).save(sys.argv[2])"
    )
    subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(tmp_path / "a.safetensors"),
            str(tmp_path / "f.safetensors"),
            engine,
        ],
        cwd=tmp_path,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    files = [(tmp_path / f"{x}.safetensors").read_bytes() for x in "abcdef"]
    assert all(f == files[0] for f in files), [len(f) for f in files]


def test_the_file_is_plain_safetensors_with_aligned_tensors(tmp_path):
    from safetensors import safe_open

    forest = searched("native")
    path = tmp_path / "f.safetensors"
    forest.save(path)
    data = path.read_bytes()
    n, head = header(data)
    assert n % 8 == 0
    metadata = head.pop("__metadata__")
    assert metadata["format"] == FORMAT and metadata["checksum"].startswith("sha256:")
    assert SearchConfig.from_dict(json.loads(metadata["config"])) == forest.config
    for name, info in head.items():
        start = info["data_offsets"][0]
        itemsize = np.dtype(forest.export_arrays()[name].dtype).itemsize
        assert start % itemsize == 0, f"{name} is not aligned"
    with safe_open(str(path), framework="numpy") as handle:
        arrays = {k: handle.get_tensor(k) for k in handle.keys()}
    assert_arrays_equal(arrays, forest.export_arrays(), "safetensors reader")


@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("save") / "good.safetensors"
    searched("native", num_trees=2).save(path)
    return path


def test_every_single_bit_flip_is_refused(tmp_path):
    """Every bit of the file, header and data: the load raises ValueError, never returns a
    different forest (the old format loaded 31 of 60 data flips silently)."""
    forest = Forest(2, SearchConfig(max_nodes=50), root_payloads=[3, 4])
    forest.run_synthetic(3, 2)
    forest.ask(1)
    path = tmp_path / "small.safetensors"
    forest.save(path)
    data = path.read_bytes()
    Forest.load(path)
    accepted = []
    for offset in range(len(data)):
        for bit in range(8):
            damaged = bytearray(data)
            damaged[offset] ^= 1 << bit
            path.write_bytes(damaged)
            try:
                Forest.load(path)
                accepted.append((offset, bit))
            except ValueError:
                pass
    assert not accepted, f"{len(accepted)} flips loaded, e.g. {accepted[:5]} of {len(data)} bytes"


def test_swapped_tensor_offsets_are_refused(good_file, tmp_path):
    data = good_file.read_bytes()
    _, head = header(data)
    names = [k for k in head if k != "__metadata__"]
    swaps = 0
    for a in names:
        for b in names:
            if a >= b:
                continue
            damaged = json.loads(json.dumps(head))
            damaged[a]["data_offsets"], damaged[b]["data_offsets"] = (
                head[b]["data_offsets"],
                head[a]["data_offsets"],
            )
            path = tmp_path / f"{a}-{b}.safetensors"
            path.write_bytes(write_header(data, damaged))
            with pytest.raises(ValueError):
                Forest.load(path)
            swaps += 1
    assert swaps == len(names) * (len(names) - 1) // 2


@pytest.mark.parametrize(
    ("name", "change", "pattern"),
    [
        ("config edited", {"config": None}, "checksum"),
        ("checksum removed", {"checksum": "drop"}, "checksum"),
        ("format from the future", {"format": "qengine.forest/3"}, "not a qengine forest"),
        ("downgraded to the old format", {"format": FORMAT_V1}, "checksum"),
    ],
)
def test_edited_metadata_is_refused(good_file, tmp_path, name, change, pattern):
    data = good_file.read_bytes()
    _, head = header(data)
    metadata = head["__metadata__"]
    for key, value in change.items():
        if key == "config":
            config = json.loads(metadata["config"])
            config["c"] = 9.0
            metadata["config"] = json.dumps(config, sort_keys=True)
        elif value == "drop":
            metadata.pop(key)
        else:
            metadata[key] = value
    path = tmp_path / "edited.safetensors"
    path.write_bytes(write_header(data, head))
    with pytest.raises(ValueError, match=pattern):
        Forest.load(path)


def test_truncated_files_are_refused(good_file, tmp_path):
    data = good_file.read_bytes()
    path = tmp_path / "short.safetensors"
    for length in range(0, len(data), 7):
        path.write_bytes(data[:length])
        with pytest.raises(ValueError):
            Forest.load(path)


@pytest.mark.parametrize("engine", ENGINES)
def test_files_of_the_previous_format_still_load(engine, tmp_path):
    """qengine.forest/1: written by safetensors.save_file, no checksum."""
    from safetensors.numpy import save_file

    forest = searched(engine)
    path = tmp_path / "v1.safetensors"
    save_file(
        forest.export_arrays(),
        str(path),
        metadata={"format": FORMAT_V1, "config": forest.config.to_json()},
    )
    for other in ENGINES:
        loaded = Forest.load(path, engine=other)
        assert loaded.config == forest.config
        assert_arrays_equal(forest.export_arrays(), loaded.export_arrays(), "v1")
    loaded.save(tmp_path / "v2.safetensors")  # re-saved in the current format, with a checksum
    _, head = header((tmp_path / "v2.safetensors").read_bytes())
    assert head["__metadata__"]["format"] == FORMAT


@core_settings(max_examples=15)
@given(
    engine=st.sampled_from(ENGINES),
    seed=st.integers(0, 2**32 - 1),
    num_trees=st.integers(1, 4),
    in_flight=st.booleans(),
    flip=st.floats(0.0, 1.0),
    bit=st.integers(0, 7),
)
def test_round_trip_and_random_damage(engine, seed, num_trees, in_flight, flip, bit):
    import tempfile
    from pathlib import Path

    forest = searched(engine, seed=seed, num_trees=num_trees, in_flight=in_flight)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.safetensors"
        forest.save(path)
        loaded = Forest.load(path, engine=engine)
        assert_arrays_equal(forest.export_arrays(), loaded.export_arrays(), "round trip")
        data = bytearray(path.read_bytes())
        data[int(flip * (len(data) - 1))] ^= 1 << bit
        path.write_bytes(data)
        with pytest.raises(ValueError):
            Forest.load(path, engine=engine)
