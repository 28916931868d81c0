"""A long-running ClientApp worker: one process serves every message its SuperNode receives.

Flower's default (`flower-supernode --isolation subprocess`) starts a fresh
`flwr-clientapp` process for each message, so every round pays a Python start, the
imports (torch, transformers, flwr) and fedlingua's preparation of the model and the
client's data. With `flower-supernode --isolation process` the SuperNode starts no
executor of its own and waits for one to ask its Runtime API for tasks. This worker is
that executor: it acquires the SuperNode's ClientApp tasks one at a time and runs each
in this process, so imports, model and encoded data (`fedlingua.flower_app.task`)
stay in memory from one round to the next.

    flower-supernode --superlink HOST:9091 ... --isolation process --port 9094 \\
        --ssl-certfile runtime.pem --ssl-keyfile runtime.key --ssl-ca-certfile ca.crt
    python -m fedlingua.flower_app.worker --runtime-api-address 127.0.0.1:9094 \\
        --root-certificates ca.crt --parent-pid <pid of that flower-supernode>

A task goes through Flower's own steps: pull the task input (message, context, run,
FAB), call the ClientApp, push the reply, then the task's final status and context. The
ClientApp is always fedlingua's own, imported from the installed package: a FAB that
names other components is refused and nothing in it is unpacked or imported
(`fedlingua.flower_app.guard`).
Each task runs in its own thread, and only the ClientApp call is serialized (one model
per process; a SuperNode hands out one message at a time anyway): a task that cannot
finish its transfers (say, a message of a run the SuperLink forgot when it restarted,
whose objects never arrive) does not hold up the next one, as separate `flwr-clientapp`
processes would not.
What runs is the fedlingua installed next to the worker (as for `flwr-clientapp`);
runtime dependency installation is never done here. An exception in a task becomes
an error reply to the server; the worker itself keeps serving. It exits when its
parent process (the SuperNode) exits, or on SIGINT/SIGTERM.

`scripts/federation.sh up` runs one worker per SuperNode by default
(`--isolation subprocess` gives Flower's per-message processes instead).
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from flwr.clientapp import ClientApp
from flwr.common.constant import SubStatus
from flwr.proto.runtime_pb2 import (  # pylint: disable=E0611
    AcquireTaskRequest,
    SendTaskHeartbeatRequest,
)
from flwr.supercore.app_utils import start_parent_process_monitor
from flwr.supercore.constant import TaskType
from flwr.supercore.heartbeat import HeartbeatSender
from flwr.supercore.interceptors import (
    RuntimeTokenHttpInterceptor,
    RuntimeVersionHttpInterceptor,
)
from flwr.supercore.interceptors.http.superexec_auth import SuperExecAuthHttpInterceptor
from flwr.supercore.retry import make_simple_http_retry_invoker
from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supernode.runtime.run_clientapp import (
    pull_task_input,
    push_message,
    push_task_output,
)

from fedlingua.federation.mods import error_reason, error_reply
from fedlingua.flower_app.guard import check_fab, check_flower_version, own_client_app

log = logging.getLogger("fedlingua.worker")
ACQUIRE_TASK = "/flwr.proto.Runtime/AcquireTask"  # what a SuperNode's secret protects


def _client(address: str, root_certificates: bytes | None, insecure: bool, *interceptors):
    return RuntimeHttpClient.from_server_address(
        server_address=address,
        insecure=insecure,
        root_certificates=root_certificates,
        interceptors=list(interceptors),
        retry_invoker=make_simple_http_retry_invoker(),
    )


def _heartbeat(client: RuntimeHttpClient) -> Callable[[], bool]:
    """Task heartbeats; unlike flwr-clientapp's, a refused one never signals this process."""
    request = SendTaskHeartbeatRequest()

    def beat() -> bool:
        try:
            client.SendTaskHeartbeat(request)
        except httpx.HTTPError:
            return False
        return True

    return beat


class Worker:
    """Acquires the ClientApp tasks of one SuperNode and runs them in this process."""

    def __init__(
        self,
        address: str,
        *,
        root_certificates: bytes | None = None,
        insecure: bool = False,
        poll_s: float = 0.2,
        max_parallel: int = 8,
        superexec_secret: bytes | None = None,
    ) -> None:
        if insecure == (root_certificates is not None):
            raise ValueError("give exactly one of root_certificates and insecure=True")
        self.address = address
        self.root_certificates = root_certificates
        self.insecure = insecure
        self.poll_s = poll_s
        self.max_parallel = max_parallel
        self.superexec_secret = superexec_secret  # signs AcquireTask (the SuperNode demands it)
        self.tasks_done = 0
        self._lock = threading.Lock()  # one ClientApp call at a time: one model per process
        self._threads: list[threading.Thread] = []

    def serve(self, max_tasks: int | None = None) -> None:
        interceptors = [RuntimeVersionHttpInterceptor(component_name="SuperExec")]
        if self.superexec_secret is not None:
            interceptors.append(
                SuperExecAuthHttpInterceptor(
                    master_secret=self.superexec_secret, protected_methods=[ACQUIRE_TASK]
                )
            )
        acquirer = _client(self.address, self.root_certificates, self.insecure, *interceptors)
        request = AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP])
        log.info("serving ClientApp tasks of the SuperNode at %s", self.address)
        try:
            while max_tasks is None or self.tasks_done < max_tasks:
                self._threads = [t for t in self._threads if t.is_alive()]
                if len(self._threads) >= self.max_parallel:
                    time.sleep(self.poll_s)
                    continue
                res = acquirer.AcquireTask(request)
                if res.HasField("task") and res.token:
                    thread = threading.Thread(target=self.run_task, args=(res.token,), daemon=True)
                    thread.start()
                    self._threads.append(thread)
                else:
                    time.sleep(self.poll_s)
        finally:
            acquirer.close()

    def _app(self, run, fab) -> ClientApp:
        """fedlingua's own ClientApp, for a package that names it (`guard.check_fab`); a
        foreign package is refused before anything in it is unpacked or imported."""
        del run
        check_fab(fab.content)
        return own_client_app()

    def run_task(self, token: str) -> None:
        """One ClientApp task: what `flwr-clientapp --token` does, without leaving the process."""
        start = time.perf_counter()
        client = _client(
            self.address,
            self.root_certificates,
            self.insecure,
            RuntimeVersionHttpInterceptor(component_name="flwr-clientapp"),
            RuntimeTokenHttpInterceptor(token),
        )
        heartbeat = HeartbeatSender(_heartbeat(client))
        heartbeat.start()
        message = context = reply = None
        status, details = SubStatus.FAILED, "ClientApp task failed"
        try:
            message, context, run, fab = pull_task_input(client)
            with self._lock:
                reply = self._app(run, fab)(message=message, context=context)
            status, details = SubStatus.COMPLETED, ""
        except Exception as exc:  # the task fails, the worker goes on
            log.exception("ClientApp task failed")
            details = error_reason(exc)
            if message is not None:
                reply = error_reply(message, exc)
        finally:
            try:
                if reply is not None and context is not None:
                    push_message(client, reply, context)
            except Exception:
                log.exception("could not push the reply to the SuperNode")
            push_task_output(client=client, context=context, sub_status=status, details=details)
            heartbeat.stop()
            client.close()
        with self._lock:
            self.tasks_done += 1
        kind = message.metadata.message_type if message is not None else "?"
        log.info(
            "task %s (%s) %s in %.2fs", self.tasks_done, kind, status, time.perf_counter() - start
        )


def _warm_imports() -> None:
    """Import what every fedlingua task needs before the first one arrives."""
    import fedlingua.flower_app.client_app  # noqa: F401


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m fedlingua.flower_app.worker",
        description="Long-running ClientApp worker for `flower-supernode --isolation process`",
    )
    parser.add_argument("--runtime-api-address", required=True, help="SuperNode Runtime API")
    tls = parser.add_mutually_exclusive_group(required=True)
    tls.add_argument("--root-certificates", help="CA certificate of the Runtime API's TLS")
    tls.add_argument("--insecure", action="store_true", help="plain HTTP (not recommended)")
    parser.add_argument("--parent-pid", type=int, help="exit when this process exits")
    parser.add_argument("--poll-s", type=float, default=0.2, help="task polling interval")
    parser.add_argument(
        "--superexec-auth-secret-file",
        help="the SuperNode's SuperExec secret (its --superexec-auth-secret-file)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll otherwise
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>`: where is it? (stack to the log)
    if args.parent_pid is not None:
        start_parent_process_monitor(args.parent_pid)
    roots = Path(args.root_certificates).read_bytes() if args.root_certificates else None
    os.environ.setdefault("FEDLINGUA_THREADS", "1")
    check_flower_version()
    _warm_imports()
    worker = Worker(
        args.runtime_api_address,
        root_certificates=roots,
        insecure=args.insecure,
        poll_s=args.poll_s,
        superexec_secret=(
            Path(args.superexec_auth_secret_file).read_bytes()
            if args.superexec_auth_secret_file
            else None
        ),
    )
    try:
        worker.serve()
    except KeyboardInterrupt:
        log.info("stopped after %d task(s)", worker.tasks_done)


if __name__ == "__main__":
    main()
