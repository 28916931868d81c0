"""Paradigms as topology: which sites exist and which model serves which language.

This is the only module that knows the paradigms apart. Every paradigm is a set of
federations, each a named model trained by its nodes:

* federated   -- one federation ("global") whose nodes are all clients (the paper's paradigm);
* monolingual -- one federation per language whose only node holds that language's data:
  a local model trained exactly as a federated client would be (same passes over its
  data, same optimizer resets), so the only difference from federation is the averaging;
* centralized -- one federation ("pooled") whose only node holds every client's data.

A *local* topology (monolingual, centralized) trains each model on one node: nothing
travels, no client fails, and the federation settings (strategy, sampling, faults) do
not apply.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedlingua.config import ConfigError, RunConfig
from fedlingua.data import ClientData, EncodedSplit
from fedlingua.federation.client import ClientSite

GLOBAL = "global"
POOLED = "pooled"


def concat(parts: list[EncodedSplit]) -> EncodedSplit:
    """One encoded split holding the rows of `parts`, in order."""
    return EncodedSplit(
        input_ids=[ids for p in parts for ids in p.input_ids],
        labels=[y for p in parts for y in p.labels],
        langs=[x for p in parts for x in p.langs],
    )


@dataclass(frozen=True)
class Topology:
    """The federations of a run (name -> nodes) and which of them serves each language."""

    paradigm: str
    federations: dict[str, list[ClientSite]]

    @property
    def local(self) -> bool:
        """Each model trains on one node's own data: nothing is exchanged or averaged."""
        return self.paradigm != "federated"

    @property
    def per_language(self) -> bool:
        """Every language has a model of its own (monolingual)."""
        return self.paradigm == "monolingual"

    def model_for(self, language: str) -> str:
        """Name of the model (federation) that serves `language`."""
        return language if self.per_language else next(iter(self.federations))

    def selection_languages(self, model: str, languages: list[str]) -> list[str]:
        """The dev languages whose accuracy selects `model`'s best round."""
        return [model] if self.per_language else list(languages)


def build_topology(
    cfg: RunConfig, clients: list[ClientData], train: dict[str, EncodedSplit]
) -> Topology:
    """The configured paradigm's federations over `clients` (train: client id -> encoded)."""
    sites = [ClientSite(c.client_id, c.lang, train[c.client_id]) for c in clients]
    if cfg.paradigm == "federated":
        return Topology(cfg.paradigm, {GLOBAL: sites})
    if cfg.paradigm == "centralized":
        pooled = ClientSite(POOLED, "all", concat([s.train for s in sites]))
        return Topology(cfg.paradigm, {POOLED: [pooled]})
    by_lang: dict[str, list[ClientSite]] = {}
    for s in sites:
        by_lang.setdefault(s.lang, []).append(s)
    return Topology(
        cfg.paradigm,
        {
            lang: [ClientSite(lang, lang, concat([s.train for s in group]))]
            for lang, group in by_lang.items()
        },
    )


def require_federated(cfg: RunConfig) -> None:
    """Fail unless the run is a federation: only that runs on a Flower grid (the Flower App)."""
    if cfg.paradigm != "federated":
        raise ConfigError(
            f"paradigm={cfg.paradigm!r}: the Flower App runs the federated paradigm only "
            "(run monolingual/centralized in-process with `fedlingua run`)"
        )
