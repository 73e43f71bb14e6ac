"""The saved-forest file (docs/search-semantics.md, 5.9): safetensors with a checksum.

Layout (the safetensors format, readable by any safetensors reader)::

    u64 little-endian N | header: N bytes of JSON, space-padded to a multiple of 8 | data

The header is written here rather than by ``safetensors.save_file`` so that it is deterministic:
keys sorted, no whitespace, tensors laid out by decreasing item size then name (every tensor stays
aligned), so two saves of the same forest are byte-identical, whichever engine wrote them. The
metadata holds ``format`` (:data:`FORMAT`), ``config`` (``SearchConfig.to_json()``) and
``checksum``: ``"sha256:"`` + the hex SHA-256 of :func:`digest`, which covers the format, the
config text and every tensor's name, dtype, shape and bytes, so a bit flipped in the data, two
tensors' offsets swapped in the header or an edited config are refused on load (ValueError).

Files of the previous format (:data:`FORMAT_V1`, written by ``safetensors.save_file`` without a
checksum) still load; their structure is validated like any other, their bytes cannot be.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "qengine.forest/2"
FORMAT_V1 = "qengine.forest/1"
CHECKSUM_PREFIX = "sha256:"

# numpy dtype -> safetensors dtype code, for the dtypes a forest export holds.
_DTYPE_CODES = {
    np.dtype(np.int32): "I32",
    np.dtype(np.int64): "I64",
    np.dtype(np.uint16): "U16",
    np.dtype(np.uint64): "U64",
    np.dtype(np.float32): "F32",
    np.dtype(np.float64): "F64",
    np.dtype(np.uint8): "U8",
}


def _little_endian(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))


def digest(file_format: str, config_json: str, arrays: Mapping[str, np.ndarray]) -> str:
    """``"sha256:<hex>"`` of the format, the config text and, by sorted name, every array's name,
    dtype code, shape and little-endian bytes."""
    h = hashlib.sha256()
    h.update(f"{file_format}\n{len(config_json)}\n".encode())
    h.update(config_json.encode())
    for name in sorted(arrays):
        array = arrays[name]
        code = _DTYPE_CODES.get(array.dtype.newbyteorder("="), str(array.dtype))
        h.update(f"\n{name}\n{code}\n{list(array.shape)}\n".encode())
        h.update(memoryview(_little_endian(array)).cast("B"))
    return CHECKSUM_PREFIX + h.hexdigest()


def write(path: str | Path, arrays: Mapping[str, np.ndarray], config_json: str) -> None:
    """Write ``arrays`` (1-D numpy arrays of the export dtypes) and the config to ``path``."""
    names = sorted(arrays, key=lambda k: (-arrays[k].dtype.itemsize, k))  # aligned, deterministic
    header: dict[str, Any] = {
        "__metadata__": {
            "checksum": digest(FORMAT, config_json, arrays),
            "config": config_json,
            "format": FORMAT,
        }
    }
    offset = 0
    for name in names:
        array = arrays[name]
        size = array.size * array.dtype.itemsize
        header[name] = {
            "data_offsets": [offset, offset + size],
            "dtype": _DTYPE_CODES[array.dtype.newbyteorder("=")],
            "shape": list(array.shape),
        }
        offset += size
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(text)))
        handle.write(text)
        for name in names:
            handle.write(memoryview(_little_endian(arrays[name])).cast("B"))


def read(path: str | Path) -> tuple[dict[str, np.ndarray], str]:
    """The arrays and the config text of a saved forest; ValueError for a file that is not one, is
    damaged or fails its checksum."""
    from safetensors import SafetensorError, safe_open

    arrays: dict[str, np.ndarray] = {}
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            file_format = metadata.get("format")
            if file_format not in (FORMAT, FORMAT_V1):
                raise ValueError(
                    f"{path} is not a qengine forest (format {file_format!r}, expected "
                    f"{FORMAT!r} or the older {FORMAT_V1!r})"
                )
            for key in handle.keys():
                arrays[key] = handle.get_tensor(key)
    except SafetensorError as error:
        raise ValueError(f"{path} is not a readable qengine forest: {error}") from error
    config_json = metadata.get("config")
    if not isinstance(config_json, str):
        raise ValueError(f"{path} has no search config in its metadata")
    checksum = metadata.get("checksum")
    if file_format == FORMAT and checksum is None:
        raise ValueError(f"{path} claims format {FORMAT!r} but carries no checksum (damaged?)")
    if checksum is not None and checksum != digest(file_format, config_json, arrays):
        raise ValueError(
            f"{path} fails its checksum: its data, header or config changed after it was "
            "written (a damaged or edited file); nothing was loaded"
        )
    return arrays, config_json
