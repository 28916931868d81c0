"""Run the trust-boundary attacks of a deployment against a fedlingua source tree.

    PYTHONPATH=<tree>/src python benchmarks/trust_attacks.py <tree> [--out FILE.json]

One site of three (sw) alters its training reply: num-examples NaN or 10^15, a list-valued
compute-s, another site's client id. Then a run named `../../victim`, and two identical
local-DP runs with the default config (identical released models: noise recomputable
from the config). Prints one line per attack, and writes them to --out. Used to record
the before/after of the trust-boundary work (the tests in tests/federation and
tests/deployment are what guards it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile


def _attacker(kind: str):
    from flwr.app import ConfigRecord

    from fedlingua.federation.client import handle_train
    from fedlingua.federation.payload import CLIENT_KEY, METRICS_KEY

    def handler(bench, site, content, on_step=None, context=None):
        reply = handle_train(bench, site, content, on_step=on_step, context=context)
        if site.client_id == "sw":
            metrics = reply[METRICS_KEY]
            if kind == "num-examples NaN":
                metrics["num-examples"] = float("nan")
            elif kind == "num-examples 10^15":
                metrics["num-examples"] = 10**15
            elif kind == "list-valued compute-s":
                metrics["compute-s"] = [1.0, 2.0]
            elif kind == "spoofed client id":
                reply[CLIENT_KEY] = ConfigRecord({"client-id": "fr", "lang": "fr"})
        return reply

    return handler


def _reply_attack(tiny_config, backbone, kind: str) -> str:
    from fedlingua.engine import run

    tmp = tempfile.mkdtemp()
    cfg = tiny_config(tmp, name="a", federation__rounds=1)
    try:
        run(cfg, backbone=backbone, client_handler=_attacker(kind), log=lambda s: None)
    except Exception as exc:  # what the attack did to the run
        return f"run crashed: {type(exc).__name__}: {str(exc)[:80]}"
    with open(f"{tmp}/a/metrics.jsonl") as fh:
        fed = json.loads(fh.readline())["federations"]["global"]
    failed = {k: v[:70] for k, v in fed["failed"].items()}
    return f"completed; succeeded {fed['succeeded']}, failed {failed}, weight {fed['num_examples']}"


def _name_attack(tiny_config, backbone) -> str:
    from fedlingua.engine import run

    tmp = tempfile.mkdtemp()
    try:
        cfg = tiny_config(f"{tmp}/runs/x", name="../../victim", federation__rounds=1)
        return f"run directory {run(cfg, backbone=backbone, log=lambda s: None)['run_dir']}"
    except Exception as exc:
        return f"refused: {type(exc).__name__}: {str(exc)[:60]}"


def _noise_attack(tiny_config, backbone) -> str:
    import torch

    from fedlingua.engine import load_final_states, run

    states = []
    for name in "ab":
        tmp = tempfile.mkdtemp()
        cfg = tiny_config(tmp, name=name, federation__rounds=2, train__lr=1e-2)
        cfg.privacy.dp, cfg.privacy.noise_multiplier = "local", 1.0
        run(cfg.validate(), backbone=backbone, log=lambda s: None)
        states.append(load_final_states(f"{tmp}/{name}")["global"])
    same = all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    return "identical models: the noise follows from the config" if same else "different models"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tree", help="the fedlingua checkout whose tests/conftest.py to use")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    sys.path.insert(0, f"{args.tree}/tests")
    from conftest import _tiny_config

    from fedlingua.models import build_tiny_backbone

    backbone = build_tiny_backbone(seed=0)
    kinds = ["num-examples NaN", "num-examples 10^15", "list-valued compute-s"]
    results = {k: _reply_attack(_tiny_config, backbone, k) for k in [*kinds, "spoofed client id"]}
    results["run name ../../victim"] = _name_attack(_tiny_config, backbone)
    results["local DP, default config, two runs"] = _noise_attack(_tiny_config, backbone)
    for key, value in results.items():
        print(f"{key}: {value}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
