"""Federation: every transport of a round, and nothing about privacy policy.

    client.py      the client update (`handle_train`), written once
    server.py      `Federation`: one round protocol (sample, exchange, check, aggregate)
    secagg.py      SecAgg+ rounds: a `Federation` whose exchange is Flower's SecAgg+ workflow
    strategies.py  Flower strategies by name, equal client weights, resumable server state
    grid.py        `InProcessGrid`: the in-process simulation's Flower grid
    mods.py        client mod composition and the error reply of a failing client
    payload.py     tensors in Flower records: validated, serialized, measured
    faults.py      fault injection: a client that sends bad tensors

`client.handle_train` and `server.Federation.step` are written once. The in-process
simulation drives them through `grid.InProcessGrid`; the Flower App in
`fedlingua.flower_app` drives the very same functions through Flower's grid (simulation
with `flwr run`, or SuperLink + SuperNodes). What privacy decides (equal weights, a DP
strategy wrapper, client mods) arrives as plain arguments: nothing here imports the
privacy package (which imports this one).
"""
