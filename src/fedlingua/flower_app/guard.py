"""Only fedlingua's own apps run: Flower's app executors, guarded.

Anyone who reaches a SuperLink's Control API can `flwr run` an app package (FAB) of their
own; Flower's `flwr-serverapp` and `flwr-clientapp` then import and run whatever
components its pyproject.toml names. fedlingua's executors refuse that:

* `check_fab` reads the package's pyproject.toml (from the zip, nothing unpacked or
  imported) and refuses a package whose components are not fedlingua's own ServerApp and
  ClientApp (`ForeignAppError`);
* the ServerApp and ClientApp that run are always the ones imported from the installed
  fedlingua, never loaded from the package's folder (which a package could fill with a
  module shadowing fedlingua's).

`python -m fedlingua.flower_app.guard serverapp|clientapp ARGS` is `flwr-serverapp` /
`flwr-clientapp` with these guards; `scripts/federation.sh` puts them first on the PATH of
the SuperLink and the SuperNodes, and the long-running worker (`worker.py`) applies the
same check. This module is the one place that reaches into Flower's non-public runtime
modules: `check_flower_version` refuses a Flower it was not written for.
"""

from __future__ import annotations

import importlib
import io
import sys
import tomllib
import zipfile
from collections.abc import Callable

import flwr

SERVER_COMPONENT = "fedlingua.flower_app.server_app:app"
CLIENT_COMPONENT = "fedlingua.flower_app.client_app:app"
COMPONENTS = {"serverapp": SERVER_COMPONENT, "clientapp": CLIENT_COMPONENT}
FLOWER_VERSIONS = ("1.42.",)  # the Flower releases whose runtime modules this guards


class ForeignAppError(RuntimeError):
    """An app package that is not fedlingua's: none of its code runs."""


def check_flower_version(version: str | None = None) -> None:
    version = version or flwr.__version__
    if not version.startswith(FLOWER_VERSIONS):
        raise RuntimeError(
            f"fedlingua's guarded Flower executors were written for Flower {FLOWER_VERSIONS}, "
            f"not {version}: check flower_app/guard.py against this Flower before running"
        )


def check_fab(content: bytes) -> None:
    """Refuse an app package whose pyproject.toml names other components than fedlingua's."""
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as fab:
            project = tomllib.loads(fab.read("pyproject.toml").decode("utf-8"))
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ForeignAppError(f"not a fedlingua app package ({type(exc).__name__})") from None
    app = project.get("tool", {}).get("flwr", {}).get("app", {})
    components = app.get("components", {}) if isinstance(app, dict) else {}
    if components != COMPONENTS:
        raise ForeignAppError(
            "the app package names components other than fedlingua's own ServerApp and "
            "ClientApp: refused, none of its code runs"
        )


def own_client_app():
    """The ClientApp of the installed fedlingua (never one loaded from a package folder)."""
    from fedlingua.flower_app.client_app import app

    return app


def _checked_install(install: Callable) -> Callable:
    def install_checked(content: bytes, *args, **kwargs):
        check_fab(content)
        return install(content, *args, **kwargs)

    return install_checked


def _serverapp() -> None:
    from flwr.server.run_serverapp import run as flower_run
    from flwr.superlink.cli.flwr_serverapp import flwr_serverapp

    runtime = importlib.import_module("flwr.superlink.runtime.run_serverapp")

    def run_own(grid, context, server_app_dir, server_app_attr=None, loaded_server_app=None):
        if server_app_attr != SERVER_COMPONENT:
            raise ForeignAppError(f"ServerApp {server_app_attr!r} is not fedlingua's: refused")
        from fedlingua.flower_app.server_app import app

        return flower_run(
            grid=grid, context=context, server_app_dir=server_app_dir, loaded_server_app=app
        )

    runtime.install_from_fab = _checked_install(runtime.install_from_fab)
    runtime.run_ = run_own
    flwr_serverapp()


def _clientapp() -> None:
    from flwr.supernode.cli import flwr_clientapp

    runtime = importlib.import_module("flwr.supernode.runtime.run_clientapp")

    runtime.install_from_fab = _checked_install(runtime.install_from_fab)
    runtime.get_load_client_app_fn = lambda **kwargs: lambda *args: own_client_app()
    flwr_clientapp()


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    kinds = {"serverapp": _serverapp, "clientapp": _clientapp}
    if not argv or argv[0] not in kinds:
        raise SystemExit("usage: python -m fedlingua.flower_app.guard serverapp|clientapp ARGS")
    check_flower_version()
    kind = argv.pop(0)
    sys.argv = [f"flwr-{kind}", *argv]
    kinds[kind]()


if __name__ == "__main__":
    main()
