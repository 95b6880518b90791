"""Is the tracking store usable? One fast check before anything is trained.

MLflow's HTTP client retries a failed request 7 times with exponential backoff (minutes per
request) and prints nothing meanwhile, so a ``tracking.uri`` pointing at a server that is
not running used to hang the run for minutes, then end in a traceback. :func:`check_store`
makes one request with a short timeout (``GET /health``, which ``mlflow server`` answers) and
returns one line naming the URI and what to do; the CLI prints it and exits 2 before any run
exists. For a SQLite store the check is creating/migrating it (under the store lock).

:func:`bound_http_retries` also caps MLflow's retries for the rest of the process, so a
server that dies mid-run is noticed within seconds and the run's writes go to the local
spool (:mod:`grokspec.tracking.spool`) instead of hanging training.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable

from grokspec.spec.mlflow_rules import uri_problem

CHECK_TIMEOUT_S = 5.0
#: MLflow's HTTP settings in a grokspec process, unless the user set them: a dead server
#: costs ~3 s per request (connection refused, 2 retries), a hung one ~3 x 10 s.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def is_http(uri: str) -> bool:
    return uri.lower().startswith(("http://", "https://"))


def bound_http_retries() -> None:
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)


#: A real REST call the run will make (the experiment lookup), not the exempt ``/health``: a
#: server that answers only its health check, or refuses the Host header, fails here.
API_PROBE = "/api/2.0/mlflow/experiments/search?max_results=1"


def http_get(url: str, timeout: float) -> tuple[int | None, str]:
    """(HTTP status, or None when nothing answered; the reason in words)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - http(s) only
            return resp.status, f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        body = exc.read(300).decode("utf-8", "replace") if exc.fp else ""
        return exc.code, f"HTTP {exc.code} from {url}" + (f": {body.strip()}" if body else "")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, str(reason) or type(reason).__name__


def server_problem(uri: str, timeout: float | None = None) -> str | None:
    """``GET <uri>/health``, then one real API call, each with a short timeout
    (:data:`CHECK_TIMEOUT_S`); None if both answer 200."""
    import urllib.parse

    timeout = CHECK_TIMEOUT_S if timeout is None else timeout
    try:
        urllib.parse.urlsplit(uri).port  # noqa: B018 - raises for a port that is not a number
    except ValueError as exc:
        return f"tracking URI {uri} cannot be parsed ({exc}): use http://HOST:PORT"
    status, why = http_get(uri.rstrip("/") + "/health", timeout)
    if status == 200:
        status, why = http_get(uri.rstrip("/") + API_PROBE, timeout)
        if status == 200:
            return None
        if status in (401, 403):
            return (f"the MLflow tracking server at {uri} refuses this client ({why}): an "
                    "MLflow >= 3 server accepts only localhost or IP Host headers unless started "
                    "with --allowed-hosts HOST (use the server's IP address, or restart it with "
                    "--allowed-hosts)")
        if status is None:
            return (f"the MLflow tracking server at {uri} answers its health check but not its "
                    f"API within {timeout:g} s ({why}): it is overloaded, or a proxy fronts a "
                    "dead backend; restart it, or point tracking.uri / $MLFLOW_TRACKING_URI at "
                    "a local sqlite:///mlflow.db store")
    return (f"cannot reach the MLflow tracking server at {uri} ({why}): start it "
            f"(mlflow server --host HOST --port PORT --backend-store-uri sqlite:///mlflow.db), "
            "or point tracking.uri / $MLFLOW_TRACKING_URI at a running server or at a local "
            "sqlite:///mlflow.db store")


def store_problem(uri: str) -> str | None:
    """Why runs cannot be logged to ``uri`` right now, in one line; None when they can."""
    problem = uri_problem(uri)
    if problem:
        return f"tracking URI {uri}: {problem}"
    if is_http(uri):
        bound_http_retries()
        return server_problem(uri)
    from grokspec.tracking.store_lock import StoreError, prepare_store, sqlite_path

    try:
        prepare_store(uri)
    except StoreError as exc:
        return f"tracking store {uri}: {exc}"
    except Exception as exc:  # noqa: BLE001 - reported as one line, the run never starts
        first = " ".join(str(exc).split())[:300]
        hint = ""
        db = sqlite_path(uri)
        if db is not None:
            hint = (f" (is {db} a MLflow database this MLflow version can migrate, in a "
                    "folder you can write to?)")
        return f"cannot open the tracking store {uri}: {type(exc).__name__}: {first}{hint}"
    return None


def local_paths_problem(uri: str, experiment: str) -> str | None:
    """Why Ray workers on other machines cannot share this store (None: they can): a SQLite
    file, or a tracking server that gives runs an artifact location on its own disk (started
    with a local ``--default-artifact-root`` and no ``--artifacts-destination``), where each
    worker would write curves, histories and checkpoints to its own disk."""
    if not is_http(uri):
        return (f"tracking.uri {uri} is a file on this machine: Ray workers on other nodes "
                "cannot write to it (run `mlflow server --host 0.0.0.0 --allowed-hosts HOST "
                "--artifacts-destination DIR` and set tracking.uri: http://HOST:5000, or pass "
                "--shared-filesystem if every node mounts it at the same path)")
    from grokspec.tracking.store_lock import client_for

    client = client_for(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:  # created the way runs create it, so the server picks its location
        exp = client.get_experiment(client.create_experiment(experiment))
    location = str(exp.artifact_location or "")
    if location.startswith(("file:", "/")):
        return (f"the tracking server {uri} stores experiment '{experiment}''s artifacts at "
                f"{location}, a path on whichever machine writes them: workers on other nodes "
                "would keep curves, histories and checkpoints on their own disks (restart the "
                "server with --artifacts-destination DIR, which proxies them as "
                "mlflow-artifacts:/, or pass --shared-filesystem if every node mounts that "
                "path)")
    return None


def check_stores(uris: Iterable[str]) -> list[str]:
    """:func:`store_problem` for each distinct URI; the problems found."""
    problems = []
    for uri in dict.fromkeys(uris):
        if problem := store_problem(uri):
            problems.append(problem)
    return problems


def preflight(uris: Iterable[str], echo: Callable[[str], None] | None = None) -> bool:
    """Before a run or sweep: every store usable (else one ``error:`` line each and False),
    then replay the local spools earlier runs left for these stores."""
    from grokspec.tracking.spool import replay_pending

    echo = echo or _stderr
    uris = list(dict.fromkeys(uris))
    problems = check_stores(uris)
    for problem in problems:
        echo(f"error: {problem}")
    if problems:
        return False
    for uri in uris:
        replay_pending(uri, echo)
    return True


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)
