"""Privacy you can measure: payload and leakage audits, differential privacy, secure aggregation.

payload.py     the payload log (every client message, as sent) and its audit
audit.py       `fedlingua audit <run-dir>`: loss-based membership inference, AUC and TPR
dp.py          client-level DP through Flower's strategy wrappers and client mods
accounting.py  (epsilon, delta): exact Gaussian composition, RDP of the sampled Gaussian
secagg.py      Flower SecAgg+: the server obtains only the sum of the clients' updates
"""
