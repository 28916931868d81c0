"""Privacy as policy and audit: what a run may release, and checks of what it did release.

    dp.py          client-level DP: the plan a run's federations follow (noise multiplier,
                   Flower's strategy wrappers, client mods) and the (epsilon, delta) it spent
    accounting.py  (epsilon, delta) of composed Gaussian releases, and noise calibration
    payload.py     the payload log (every client message, as sent) and its audit
    audit.py       `fedlingua audit <run-dir>`: loss-based membership inference, AUC and TPR

How messages travel (plain rounds, SecAgg+) is `fedlingua.federation`'s: privacy imports
federation, never the reverse.
"""
