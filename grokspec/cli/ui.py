"""``grokspec ui``: MLflow's UI on the store the specs use, on a free port, with the link.

Before, the CLI printed ``mlflow ui --backend-store-uri ...`` and a chart-view link that
assumed port 5000: with 5000 busy (another UI, macOS AirPlay) the user edited the link by
hand. This command picks the store as ``grokspec run`` does (``--uri``, else
``$MLFLOW_TRACKING_URI``, else ``./mlflow.db``), serves it on 127.0.0.1 and a free port
(or ``--port``), waits until the UI answers, prints the chart-view link with that port, and
stops the server on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

START_TIMEOUT_S = 120.0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("ui", help="serve the MLflow UI of the store on a free port, print the "
                       "chart-view link")
    p.add_argument("--uri", default=None, help="tracking store (default: as `grokspec run`: "
                   "$MLFLOW_TRACKING_URI, else ./mlflow.db)")
    p.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    p.add_argument("--experiment", default=None, help="open this experiment (by name)")
    p.add_argument("--experiment-id", default=None, help="open this experiment (by id)")
    p.add_argument("--parent", default=None, help="a sweep's parent run: its children")
    p.set_defaults(func=main)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    from grokspec.tracking.health import http_get

    return http_get(url + "/health", 2.0)[0] == 200


def main(args: argparse.Namespace) -> int:
    from grokspec.tracking.health import store_problem
    from grokspec.tracking.naming import chart_view_url
    from grokspec.tracking.tracker import resolve_uri

    uri = resolve_uri(args.uri)
    if problem := store_problem(uri):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    exp_id = args.experiment_id
    if args.experiment is not None:
        from grokspec.tracking.store import RunStore

        exp_id = RunStore(uri).experiment_id(args.experiment)
        if exp_id is None:
            print(f"error: no experiment named '{args.experiment}' in {uri}", file=sys.stderr)
            return 2
    if uri.startswith(("http://", "https://")):  # a server serves its own UI
        print(chart_view_url(uri, exp_id, args.parent) if exp_id else uri)
        return 0
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
           "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(base):
            if proc.poll() is not None:
                err = (proc.stderr.read() if proc.stderr else "").strip().splitlines()
                print(f"error: the MLflow UI did not start on port {port}: "
                      f"{err[-1] if err else 'exited ' + str(proc.returncode)}",
                      file=sys.stderr)
                return 2
            if time.monotonic() > deadline:
                print(f"error: the MLflow UI did not answer on {base} within "
                      f"{START_TIMEOUT_S:g} s", file=sys.stderr)
                return 2
            time.sleep(0.5)
        print(f"MLflow UI on {base} (store {uri}); Ctrl-C stops it")
        if exp_id is not None:
            print(f"chart view: {chart_view_url(base, exp_id, args.parent)}")
        sys.stdout.flush()
        proc.wait()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
