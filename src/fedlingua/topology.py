"""Paradigms as topology: which sites exist and which model serves which language.

This is the only module that knows the paradigms apart. Every paradigm is a set of
federations, each a named model trained by its nodes:

* federated   -- one federation ("global") whose nodes are all training sites (the paper's
  paradigm);
* monolingual -- one federation per language whose only node holds that language's data:
  a local model trained exactly as a federated client would be (same passes over its
  data, same optimizer resets), so the only difference from federation is the averaging;
* centralized -- one federation ("pooled") whose only node holds every client's data.

A *local* topology (monolingual, centralized) trains each model on one node: nothing
travels, no client fails, and the federation settings (strategy, sampling, faults) do
not apply.

The coordinator's `Topology` is built from the roll call (`Roster`): it names sites, never
holds their data. `simulated_sites` is the in-process simulation's side: the sites a
paradigm makes of one dataset, each with its own training rows and its own share of the
dev/test rows (a language's rows are dealt round-robin to the sites of that language; a
language without clients gets an evaluation-only site).
"""

from __future__ import annotations

from dataclasses import dataclass

from fedlingua.config import ConfigError, RunConfig
from fedlingua.data import ClientData, EncodedSplit
from fedlingua.federation.client import ClientSite
from fedlingua.federation.rollcall import Roster

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
    """The federations of a run (name -> client ids) and which of them serves each language."""

    paradigm: str
    federations: dict[str, list[str]]

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


def build_topology(cfg: RunConfig, roster: Roster) -> Topology:
    """The configured paradigm's federations over the training sites of the roll call.
    A local paradigm's sites are its models (`simulated_sites` names them so)."""
    ids = [s.client_id for s in roster.training]
    if cfg.paradigm == "monolingual" and cfg.data.languages:  # models in the configured order
        rank = {x: i for i, x in enumerate(cfg.data.languages)}
        ids.sort(key=lambda x: (rank.get(x, len(rank)), x))
    if not ids:
        raise ConfigError("no site holds training data")
    if cfg.paradigm == "federated":
        return Topology(cfg.paradigm, {GLOBAL: ids})
    return Topology(cfg.paradigm, {cid: [cid] for cid in ids})


Evaluation = dict[str, dict[str, EncodedSplit]]  # language -> split -> encoded rows


def simulated_sites(
    cfg: RunConfig,
    clients: list[ClientData],
    train: dict[str, EncodedSplit],
    evaluation: Evaluation,
    labels: tuple[str, ...],
) -> list[ClientSite]:
    """The sites the configured paradigm makes of one dataset's clients (in-process)."""
    if cfg.paradigm == "federated":
        groups = [(c.client_id, c.lang, [c.client_id]) for c in clients]
    elif cfg.paradigm == "centralized":
        groups = [(POOLED, "all", [c.client_id for c in clients])]
    else:
        by_lang: dict[str, list[str]] = {}
        for c in clients:
            by_lang.setdefault(c.lang, []).append(c.client_id)
        groups = [(lang, lang, ids) for lang, ids in by_lang.items()]
    langs_of = {c.client_id: c.lang for c in clients}
    holders: dict[str, list[int]] = {}  # language -> the sites that hold its training rows
    for i, (_, _, ids) in enumerate(groups):
        for lang in dict.fromkeys(langs_of[cid] for cid in ids):
            holders.setdefault(lang, []).append(i)
    shares: list[Evaluation] = [{} for _ in groups]
    extra = []
    for lang, splits in evaluation.items():
        sites = holders.get(lang)
        if sites is None:  # no client: an evaluation-only site
            extra.append(ClientSite(lang, lang, concat([]), {lang: splits}, labels))
            continue
        for j, i in enumerate(sites):
            shares[i][lang] = {name: deal(split, len(sites), j) for name, split in splits.items()}
    return [
        ClientSite(cid, lang, concat([train[x] for x in ids]), shares[i], labels)
        for i, (cid, lang, ids) in enumerate(groups)
    ] + extra


def deal(split: EncodedSplit, k: int, i: int) -> EncodedSplit:
    """Rows i, i + k, i + 2k, ... of `split`: site i's share of k sites."""
    if k == 1:
        return split
    return EncodedSplit(
        input_ids=split.input_ids[i::k], labels=split.labels[i::k], langs=split.langs[i::k]
    )


def require_federated(cfg: RunConfig) -> None:
    """Fail unless the run is a federation: only that runs on a Flower grid (the Flower App)."""
    if cfg.paradigm != "federated":
        raise ConfigError(
            f"paradigm={cfg.paradigm!r}: the Flower App runs the federated paradigm only "
            "(run monolingual/centralized in-process with `fedlingua run`)"
        )
