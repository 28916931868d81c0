"""Run outputs: the run directory (config, metrics, checkpoints, tensors) and result tables."""

from fedlingua.report.rundir import RunDir
from fedlingua.report.tables import compare_table, curves_table, language_table

__all__ = ["RunDir", "compare_table", "curves_table", "language_table"]
