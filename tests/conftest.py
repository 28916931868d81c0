"""Test environment: offline, one torch thread, no telemetry; shared tiny-model fixtures."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION", "1")
os.environ.setdefault("FEDLINGUA_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# the Flower App reads run configs only from allowed folders: the tests write theirs here
os.environ.setdefault("FEDLINGUA_CONFIG_DIRS", tempfile.gettempdir())

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_backbone():
    """A tiny randomly initialised BERT with a small trained tokenizer (built, not downloaded)."""
    from fedlingua.models import build_tiny_backbone

    return build_tiny_backbone(seed=0)


@pytest.fixture
def tiny_model_dir(tmp_path, tiny_backbone):
    """The tiny backbone saved as a model folder: what every Flower process loads."""
    folder = tmp_path / "tiny-model"
    tiny_backbone.encoder.save_pretrained(folder)
    tiny_backbone.tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def cldr_small():
    """The built-in CLDR dataset (from babel): real multilingual text, no files needed."""
    from fedlingua.data import load_dataset

    return load_dataset("cldr", languages=["fr", "sw", "lg"], seed=0)


def _tiny_config(tmp_path, **overrides):
    """A small run on the tiny backbone: 3 CLDR languages, a few dozen examples each.

    Overrides use `section__field=value` (e.g. `federation__rounds=3`) or top-level names.
    """
    from fedlingua.config import RunConfig

    cfg = RunConfig()
    cfg.output_dir = str(tmp_path)
    cfg.progress = False
    cfg.threads = 1
    cfg.data.source = "cldr"
    cfg.data.languages = ["fr", "sw", "lg"]
    cfg.data.max_train_per_client = 48
    cfg.data.max_eval_per_language = 32
    cfg.data.max_length = 24
    cfg.federation.rounds = 2
    cfg.train.batch_size = 16
    cfg.method.num_virtual_tokens = 4
    cfg.method.encoder_hidden_size = 16
    cfg.method.lora_r = 4
    # the mechanics under test are those of the paper's plain FedAvg with cross-entropy;
    # the default recipe (FedAdam, logit adjustment) is chosen and measured by benchmarks
    cfg.federation.strategy = "fedavg"
    cfg.train.logit_adjustment = 0.0
    for key, value in overrides.items():
        section, _, field = key.partition("__")
        target = getattr(cfg, section) if field else cfg
        setattr(target, field or section, value)
    return cfg.validate()


@pytest.fixture
def tiny_config():
    return _tiny_config
