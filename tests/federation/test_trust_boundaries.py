"""Trust boundaries of a deployment, attack by attack, on the pieces a deployment runs.

A foreign app package is refused before any of its code runs; a `flwr run` caller cannot
reach paths on the coordinator (run names, config and resume paths, overrides outside an
allow-list); a site's policy refuses what a coordinator asks below it; error replies
never carry data text. The deployment-level runs of these attacks are in
tests/deployment/test_trust.py.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict

from fedlingua.config import ConfigError, RunConfig
from fedlingua.engine import run
from fedlingua.federation.mods import error_reason
from fedlingua.flower_app import guard
from fedlingua.flower_app.server_app import resumable
from fedlingua.flower_app.task import load_run_config
from fedlingua.privacy.policy import PolicyViolation, SitePolicy

OURS = """[tool.flwr.app.components]
serverapp = "fedlingua.flower_app.server_app:app"
clientapp = "fedlingua.flower_app.client_app:app"
"""
EVIL = OURS.replace("fedlingua.flower_app.server_app:app", "evil.server:app")


def _fab(pyproject: str, extra: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as fab:
        fab.writestr("pyproject.toml", pyproject)
        for name, text in (extra or {}).items():
            fab.writestr(name, text)
    return out.getvalue()


# ---- only fedlingua's code runs ------------------------------------------------------------
def test_a_foreign_app_package_is_refused_and_ours_is_accepted():
    guard.check_fab(_fab(OURS, {"src/fedlingua/x.py": ""}))
    for content in (_fab(EVIL), _fab(OURS.replace("client_app:app", "evil:app")), b"junk"):
        with pytest.raises(guard.ForeignAppError):
            guard.check_fab(content)
    assert (
        guard.own_client_app()
        is __import__("fedlingua.flower_app.client_app", fromlist=["app"]).app
    )


def test_the_guard_refuses_a_flower_it_was_not_written_for():
    guard.check_flower_version("1.42.0")
    with pytest.raises(RuntimeError, match="written for Flower"):
        guard.check_flower_version("1.43.0")


# ---- paths on the coordinator --------------------------------------------------------------
@pytest.mark.parametrize("name", ["../../victim", "a/b", "..", ".hidden", "x/../../y", "a\\b"])
def test_a_run_name_cannot_leave_the_runs_folder(tmp_path, name):
    with pytest.raises(ConfigError, match="run name"):
        RunConfig.load(None, [f"name={name!r}"])
    cfg = RunConfig()
    cfg.name = name
    with pytest.raises(ConfigError, match="run name"):
        run(cfg)


def test_a_flwr_run_caller_reaches_no_path(tmp_path, monkeypatch):
    allowed, elsewhere = tmp_path / "configs", tmp_path / "elsewhere"
    allowed.mkdir()
    elsewhere.mkdir()
    (elsewhere / "secret.toml").write_text('api_key = "s3cr3t"\n[x]\nprivate = 1\n')
    (allowed / "bad.toml").write_text('api_key = "s3cr3t"\n')
    monkeypatch.setenv("FEDLINGUA_CONFIG_DIRS", str(allowed))
    with pytest.raises(ConfigError, match="not in a folder") as outside:
        load_run_config({"fedlingua-config": str(elsewhere / "secret.toml")})
    with pytest.raises(ConfigError, match="not a readable fedlingua run config") as bad:
        load_run_config({"fedlingua-config": str(allowed / "bad.toml")})
    for err in (outside, bad):  # what the file holds never reaches the caller
        assert "api_key" not in str(err.value) and "s3cr3t" not in str(err.value)
    for key in ("output_dir='/tmp/x'", "data.source='/etc'", "data.root='/'", "threads=1"):
        with pytest.raises(ConfigError, match="cannot be set by a Flower run"):
            load_run_config({"overrides": key})
    with pytest.raises(ConfigError, match="local folder"):
        load_run_config({"overrides": "model.name='/srv/other-model'"})
    assert load_run_config({"overrides": "federation.rounds=3; seed=2"}).federation.rounds == 3


def test_resume_reads_only_a_run_directory_of_the_configured_runs_folder(tmp_path):
    cfg = RunConfig()
    cfg.output_dir = str(tmp_path / "runs")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.toml").write_text(cfg.to_toml())
    with pytest.raises(ConfigError, match="not a run directory under"):
        resumable(cfg, str(tmp_path / "other"))


# ---- a site's policy -----------------------------------------------------------------------
def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


def test_a_policy_refuses_what_asks_less_than_it_accepts(tmp_path):
    policy = SitePolicy.load(
        _policy(
            tmp_path,
            "min_batch_size = 8\nmin_local_steps = 4\nmax_rounds = 5\nmin_eval_rows = 10\n"
            'dp = "local"\nmin_noise_multiplier = 1.0\nmodels = ["tiny"]\n',
        )
    )
    cfg = RunConfig.load(
        None,
        [
            "model.name='tiny'",
            "privacy.dp='local'",
            "privacy.noise_multiplier=1.0",
            "federation.strategy='fedavg'",
        ],
    )
    policy.check_run(cfg)
    dp = ["privacy.dp='local'", "federation.strategy='fedavg'"]
    for bad in (
        ["model.name='tiny'"],  # no DP at all
        ["model.name='tiny'", *dp, "privacy.noise_multiplier=0.5"],
        ["model.name='other'", *dp, "privacy.noise_multiplier=1.0"],
    ):
        with pytest.raises(PolicyViolation):
            policy.check_run(RunConfig.load(None, bad))
    ok = ConfigRecord({"batch-size": 16, "local-epochs": 1, "server-round": 1})
    policy.check_train(ok, examples=64)  # 4 steps
    for bad in ({"batch-size": 1}, {"local-steps": 1}, {"server-round": 6}):
        with pytest.raises(PolicyViolation):
            policy.check_train(ConfigRecord(dict(ok) | bad), examples=64)
    with pytest.raises(PolicyViolation, match="evaluation rows"):
        policy.check_evaluation(1)
    with pytest.raises(ConfigError, match="unknown fields"):
        SitePolicy.load(_policy(tmp_path, "min_batchsize = 8\n"))


def test_a_site_refuses_a_coordinator_asking_for_batch_size_one(tmp_path, tiny_model_dir):
    """The ClientApp itself: a train message asking for one example per step is refused by
    the site's policy, and the reason says so; the same for DP switched off."""
    from fedlingua.federation.client import train_config
    from fedlingua.federation.grid import InProcessGrid
    from fedlingua.federation.payload import ARRAYS_KEY, CONFIG_KEY, state_to_record
    from fedlingua.federation.site import encode_labels
    from fedlingua.flower_app import client_app

    InProcessGrid({})  # makes Flower messages outside a SuperLink
    policy = _policy(tmp_path, "min_batch_size = 8\n")
    cfg = RunConfig.load(
        None,
        [
            f"model.name='{tiny_model_dir}'",
            "data.max_train_per_client=16",
            "data.max_eval_per_language=8",
            "data.max_length=24",
        ],
    )
    (tmp_path / "run.toml").write_text(cfg.to_toml())
    run_config = {"fedlingua-config": str(tmp_path / "run.toml")}
    node = {"data-source": "cldr", "data-languages": "fr", "policy": str(policy)}
    context = Context(0, 1, node, RecordDict(), run_config)
    query = Message(RecordDict(), dst_node_id=1, message_type=MessageType.QUERY)
    labels = client_app.query(query, context).content["client"]["labels"]
    bench, _ = client_app._prepared(query, context)
    for batch, refused in ((1, True), (16, False)):
        cfg.train.batch_size = batch
        config = train_config(cfg, 0.01)
        config["labels"], config["server-round"] = encode_labels(labels), 1
        content = RecordDict({ARRAYS_KEY: state_to_record(bench.get_state()), CONFIG_KEY: config})
        reply = client_app.train(Message(content, dst_node_id=1, message_type="train"), context)
        assert reply.has_error() == refused
        if refused:
            assert reply.error.reason.startswith("PolicyViolation: batch size 1 is below")


def test_an_error_reply_never_carries_data_text():
    from fedlingua.data import DataError

    leak = DataError("fr/train.tsv, line 2: unknown label 'Jane Doe, HIV positive, 12 Rue X'")
    assert "Jane Doe" not in error_reason(leak)
    assert error_reason(leak) == "DataError: details in the site's log"
    assert error_reason(PolicyViolation("batch size 1")) == "PolicyViolation: batch size 1"


def test_run_files_follow_a_strict_umask(tmp_path):
    import os
    import stat

    from fedlingua.io import write_json

    old = os.umask(0o077)
    try:
        path = write_json(tmp_path / "results.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("kind", ["serverapp", "clientapp"])
def test_the_guarded_executors_start_on_this_flower(kind, capsys):
    with pytest.raises(SystemExit) as done:  # patches Flower's runtime, then argparse's --help
        guard.main([kind, "--help"])
    assert done.value.code == 0 and "--runtime-api-address" in capsys.readouterr().out
