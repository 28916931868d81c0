"""The engine: a run's rounds, checkpoints, resume and results, for every paradigm.

    federations.py  the topology's federations wired to a grid (in-process or Flower's),
                    a strategy and the privacy plan
    loop.py         `run`: rounds, evaluation, best-round selection, checkpoint, resume
    results.py      the results of a run (scores, averages, communication, privacy, time),
                    its report, and re-scoring a finished run

Setup is `fedlingua.experiment.build`; which models exist and which serves which
language is `fedlingua.topology`. The engine itself is the same for all paradigms.
"""

from fedlingua.engine.loop import run
from fedlingua.engine.results import evaluate_run, load_final_states

__all__ = ["evaluate_run", "load_final_states", "run"]
