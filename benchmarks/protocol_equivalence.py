"""Same runs, two source trees: do they give the same tensors and scores?

    PYTHONPATH=<tree>/src python benchmarks/protocol_equivalence.py <tree> --out A.json
    python benchmarks/protocol_equivalence.py --compare A.json B.json

Six tiny-model runs cover every paradigm and the evaluation variants (personalization, a
zero-shot language, the monolingual transfer matrix, two clients per language under
FedAdam with dev selection, the language prior). Each run's final tensors are hashed
(sha256) and its scores, matrix, personalized scores and communication kept; `--compare`
prints every difference. Used to check that a change of protocol (here: federated
evaluation on the sites) leaves the results as they were.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile

CASES = {
    "federated+personalized": dict(evaluation__personalize=2, federation__rounds=3),
    "zero-shot": dict(data__languages=["fr", "sw"], data__zero_shot_languages=["lg"]),
    "monolingual+matrix": dict(paradigm="monolingual", evaluation__matrix=True),
    "centralized": dict(paradigm="centralized"),
    "2 clients/lang, fedadam, dev": dict(
        data__clients_per_language=2,
        federation__strategy="fedadam",
        evaluation__select_on_dev=True,
    ),
    "language prior": dict(evaluation__language_prior=True),
}
KEPT = ("languages", "averages", "personalized", "matrix", "prior_adjusted", "selected_round")


def record(tree: str) -> dict:
    sys.path.insert(0, f"{tree}/tests")
    from conftest import _tiny_config

    from fedlingua.engine import load_final_states, run
    from fedlingua.models import build_tiny_backbone

    backbone, out = build_tiny_backbone(seed=0), {}
    for name, overrides in CASES.items():
        cfg = _tiny_config(tempfile.mkdtemp(), **overrides)
        res = run(cfg, backbone=backbone, log=lambda s: None)
        digest = hashlib.sha256()
        for _, state in sorted(load_final_states(res["run_dir"]).items()):
            for key in sorted(state):
                digest.update(state[key].numpy().tobytes())
        kept = {k: res.get(k) for k in KEPT}
        if kept["personalized"]:
            kept["personalized"].pop("compute_s", None)  # a time, not a result
        out[name] = kept | {"tensors": digest.hexdigest(), "communication": res["communication"]}
    return out


def differences(a, b, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                found.append(f"{path}/{key}: only in one")
            else:
                found += differences(a[key], b[key], f"{path}/{key}")
        return found
    return [] if a == b else [f"{path}: {a} -> {b}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tree", nargs="?", help="the checkout whose tests/conftest.py to use")
    parser.add_argument("--out", help="write the runs' record here")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"), help="two records to compare")
    args = parser.parse_args()
    if args.compare:
        a, b = (json.load(open(p)) for p in args.compare)
        print("\n".join(differences(a, b)) or "identical")
        return
    with open(args.out, "w") as fh:
        json.dump(record(args.tree), fh, indent=1, sort_keys=True, default=str)


if __name__ == "__main__":
    main()
