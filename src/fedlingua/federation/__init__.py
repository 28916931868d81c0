"""Federation: the client update, the server round, Flower strategies and the two ways to run them.

`client.handle_train` and `server.Federation.step` are written once. The
in-process simulation drives them through `grid.InProcessGrid`; the Flower
App in `fedlingua.flower_app` drives the very same functions through
Flower's grid (simulation with `flwr run`, or SuperLink + SuperNodes).
"""
