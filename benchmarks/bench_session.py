"""Side-by-side benchmark: reviewd.Session against ftrack-python-api 3.1.0.

Both clients talk to the same server, and each is shown next to its *bare limit* — the
least any client could do for the same result.  The data comes from the embedded
DevServer (demo seed plus N Tasks); its answers are recorded once and replayed by a
canned server in its own process, so that the figures measure the clients and not the
DevServer's query engine (the live DevServer figures are reported too):

(a) start-up: a whole process from interpreter start to a ready Session with a warm
    schema cache.  Bare limit: the same interpreter running ``import requests`` and one
    API call (``query_server_information``).
(b) ``query(...).all()`` of N Tasks with five projections, one through a reference.
    Bare limit: the same HTTP requests (the same pages of 500) plus ``json.loads``.

The official client runs in its own virtualenv (``.cache/peer-venv``, see
``tests/peer.py``) as a subprocess; reviewd's query runs in this process.  Figures
are medians of several runs.  Run::

    .venv/bin/python benchmarks/bench_session.py [--tasks 10000] [--runs 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EXPRESSION = os.environ.get(
    "REVIEWD_BENCH_EXPRESSION",  # e.g. add start_date, end_date to measure arrow dates
    "select name, description, bid, priority_id, status.name from Task",
)
PAGE_SIZE = 500


_PYCACHE: str | None = None


def _clean_env() -> dict:
    """Environment of the measured processes: no FTRACK_*, byte-code caching on.

    The shared tree sets PYTHONDONTWRITEBYTECODE; an installed package has its .pyc
    files, so the start-up figure is taken with byte code cached (in a private prefix,
    for every interpreter alike, warmed before measuring).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTRACK_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if _PYCACHE:
        env["PYTHONPYCACHEPREFIX"] = _PYCACHE
    env["PYTHONPATH"] = str(ROOT)
    return env


def _run(python: str, script: str, args: list[str]) -> tuple[float, str]:
    """Run *script*; return (wall seconds from spawn to exit, last stdout line)."""
    started = time.perf_counter()
    completed = subprocess.run(
        [python, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        env=_clean_env(),
        timeout=600,
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{python} failed:\n{completed.stderr[-2000:]}")
    lines = completed.stdout.strip().splitlines()
    return elapsed, lines[-1] if lines else ""


# The floor: one POST and json.loads.  An explicit auth hook keeps requests from looking
# for a ~/.netrc (as it does for requests without auth), which a real client skips too.
BARE_START = """
import json, sys, requests
url, user, key = sys.argv[1:4]

def auth(request):
    request.headers.update({"ftrack-api-key": key, "ftrack-user": user})
    return request

response = requests.post(url + "/api", data='[{"action": "query_server_information"}]',
                         headers={"content-type": "application/json",
                                  "accept": "application/json"}, auth=auth)
json.loads(response.content)
"""

REVIEWD_START = """
import sys
from reviewd.api.session import Session
url, user, key, folder = sys.argv[1:5]
Session(url, api_key=key, api_user=user, schema_cache_path=folder, plugin_paths=[])
"""

PEER_START = """
import sys
import ftrack_api
url, user, key, folder = sys.argv[1:5]
ftrack_api.Session(server_url=url, api_key=key, api_user=user, plugin_paths=[],
                   auto_connect_event_hub=False, schema_cache_path=folder)
"""

PEER_QUERY = """
import json, sys, time
import ftrack_api
url, user, key, folder, expression = sys.argv[1:6]
session = ftrack_api.Session(server_url=url, api_key=key, api_user=user, plugin_paths=[],
                             auto_connect_event_hub=False, schema_cache_path=folder)
started = time.perf_counter()
result = session.query(expression).all()
elapsed = time.perf_counter() - started
assert result[0]["status"]["name"]
print(json.dumps({"seconds": elapsed, "count": len(result)}))
"""

BARE_QUERY = """
import json, sys, time
import requests
url, user, key, expression, page = sys.argv[1:6]
http = requests.Session()
http.headers.update({"ftrack-api-key": key, "ftrack-user": user,
                     "content-type": "application/json", "accept": "application/json"})
http.post(url + "/api", data='[{"action": "query_server_information"}]').json()
started = time.perf_counter()
offset, count = 0, 0
while offset is not None:
    body = json.dumps([{"action": "query",
                        "expression": f"{expression} offset {offset} limit {page}"}])
    result = json.loads(http.post(url + "/api", data=body).content)[0]
    count += len(result["data"])
    offset = result["metadata"]["next"]["offset"]
print(json.dumps({"seconds": time.perf_counter() - started, "count": count}))
"""


CANNED_SERVER = """
import json, sys, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

recording, upstream = sys.argv[1:3]
with open(recording) as handle:
    answers = json.load(handle)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        operations = json.loads(body)
        keys = [op["action"] + ":" + op.get("expression", "") for op in operations]
        if all(key in answers for key in keys):
            payload = ("[" + ",".join(answers[key] for key in keys) + "]").encode()
        else:  # anything not recorded goes to the live server
            request = urllib.request.Request(upstream + "/api", data=body,
                                             headers=dict(self.headers))
            payload = urllib.request.urlopen(request).read()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def record(server, path: str) -> None:
    """Record the answers a client needs (start-up and every page of the query)."""
    import requests

    http = requests.Session()
    http.headers.update(
        {
            "ftrack-api-key": server.api_key,
            "ftrack-user": server.api_user,
            "content-type": "application/json",
        }
    )

    def fetch(operation: dict) -> str:
        result = http.post(server.url + "/api", data=json.dumps([operation])).json()[0]
        return json.dumps(result)

    answers = {
        "query_server_information:": fetch({"action": "query_server_information"}),
        "query_schemas:": fetch({"action": "query_schemas"}),
    }
    offset = 0
    while offset is not None:
        expression = f"{EXPRESSION} offset {offset} limit {PAGE_SIZE}"
        text = fetch({"action": "query", "expression": expression})
        answers["query:" + expression] = text
        offset = json.loads(text)["metadata"]["next"]["offset"]
    Path(path).write_text(json.dumps(answers))


class Canned:
    """The canned server process (replays *recording*, forwards anything else)."""

    def __init__(self, recording: str, upstream) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(CANNED_SERVER), recording, upstream.url],
            stdout=subprocess.PIPE,
            text=True,
            env=_clean_env(),
        )
        port = int(self.process.stdout.readline())
        self.url = f"http://127.0.0.1:{port}"
        self.api_user, self.api_key = upstream.api_user, upstream.api_key

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def populate_tasks(server, count: int) -> None:
    """Add *count* Tasks (spread over the demo statuses) to the demo server."""
    from reviewd.api.session import Session

    with Session(
        server.url,
        api_key=server.api_key,
        api_user=server.api_user,
        schema_cache_path=False,
        plugin_paths=[],
    ) as session:
        shot = session.query("select id, project_id from Shot").first()
        statuses = [s["id"] for s in session.query("Status").all()]
        task_type = session.query("Type").first()["id"]
        project = shot["project_id"]
    operations = []
    for index in range(count):
        key = str(uuid.uuid4())
        operations.append(
            {
                "action": "create",
                "entity_type": "Task",
                "entity_key": [key],
                "entity_data": {
                    "__entity_type__": "Task",
                    "id": key,
                    "name": f"bench {index:05d}",
                    "description": f"Benchmark task number {index}",
                    "bid": 3600 * index,
                    "parent_id": shot["id"],
                    "project_id": project,
                    "status_id": statuses[index % len(statuses)],
                    "type_id": task_type,
                },
            }
        )
    for start in range(0, count, 1000):
        server.execute_batch(operations[start : start + 1000], server.api_user)


def median(values: list[float]) -> float:
    return statistics.median(values)


def summarise(samples: dict) -> dict:
    """Median and best of each variant (the machine is shared: the best run shows the
    cost of the code, the median what a user would typically see)."""
    out = {name: median(values) for name, values in samples.items()}
    out.update({f"{name}_best": min(values) for name, values in samples.items()})
    return out


def bare_query(url: str, user: str, key: str) -> float:
    """The bare limit of (b), in this process: the same pages, ``json.loads``, nothing else."""
    import requests

    http = requests.Session()
    http.headers.update(
        {
            "ftrack-api-key": key,
            "ftrack-user": user,
            "content-type": "application/json",
            "accept": "application/json",
        }
    )
    http.post(url + "/api", data='[{"action": "query_server_information"}]').json()
    started = time.perf_counter()
    offset = 0
    while offset is not None:
        body = json.dumps(
            [{"action": "query", "expression": f"{EXPRESSION} offset {offset} limit {PAGE_SIZE}"}]
        )
        result = json.loads(http.post(url + "/api", data=body).content)[0]
        offset = result["metadata"]["next"]["offset"]
    return time.perf_counter() - started


def measure(
    target, ours: str, peer: str, folder: str, options, session_class, startup: bool = True
) -> dict:
    """Figures (a) and (b) for both clients against *target* (canned or live server)."""
    creds = [target.url, target.api_user, target.api_key]
    ours_cache, peer_cache = os.path.join(folder, "ours"), os.path.join(folder, "peer")
    os.makedirs(peer_cache, exist_ok=True)
    figures: dict = {}
    if startup:
        # Warm both schema caches, the byte-code caches and the OS file cache.
        for _ in range(2):
            _run(ours, REVIEWD_START, [*creds, ours_cache])
            _run(peer, PEER_START, [*creds, peer_cache])
            _run(ours, BARE_START, creds)
            _run(peer, BARE_START, creds)
        # (a) interleaved so that machine noise hits every variant alike.
        start = {"bare": [], "reviewd": [], "peer_bare": [], "peer": []}
        for _ in range(options.runs):
            start["bare"].append(_run(ours, BARE_START, creds)[0])
            start["reviewd"].append(_run(ours, REVIEWD_START, [*creds, ours_cache])[0])
            start["peer_bare"].append(_run(peer, BARE_START, creds)[0])
            start["peer"].append(_run(peer, PEER_START, [*creds, peer_cache])[0])
        figures["startup"] = summarise(start)

    # (b) query(...).all() of N tasks with five projections incl. a reference.
    query = {"bare": [], "reviewd": [], "peer_bare": [], "peer": []}
    count = None
    for run in range(options.runs):
        query["bare"].append(bare_query(*creds))
        with session_class(
            target.url,
            api_key=target.api_key,
            api_user=target.api_user,
            schema_cache_path=ours_cache,
            plugin_paths=[],
        ) as session:
            started = time.perf_counter()
            result = session.query(EXPRESSION).all()
            query["reviewd"].append(time.perf_counter() - started)
            assert result[0]["status"]["name"]
            count = len(result)
        if run < options.peer_runs:
            query["peer_bare"].append(
                json.loads(_run(peer, BARE_QUERY, [*creds, EXPRESSION, str(PAGE_SIZE)])[1])[
                    "seconds"
                ]
            )
            outcome = json.loads(_run(peer, PEER_QUERY, [*creds, peer_cache, EXPRESSION])[1])
            assert outcome["count"] == count, (outcome, count)
            query["peer"].append(outcome["seconds"])
    figures["query"] = summarise(query)
    figures["query"]["count"] = count
    return figures


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--peer-runs", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    options = parser.parse_args(argv)

    from reviewd.api.session import Session
    from reviewd.devserver import DevServer
    from tests.peer import peer_python

    global _PYCACHE
    ours = sys.executable
    peer = str(peer_python())
    figures: dict = {"tasks": options.tasks, "runs": options.runs}
    with tempfile.TemporaryDirectory() as folder, DevServer() as server:
        _PYCACHE = os.path.join(folder, "pycache")
        populate_tasks(server, options.tasks)
        recording = os.path.join(folder, "recording.json")
        record(server, recording)
        canned = Canned(recording, server)
        try:
            figures["canned"] = measure(canned, ours, peer, folder, options, Session)
            live_options = argparse.Namespace(**{**vars(options), "peer_runs": 1})
            figures["live"] = measure(
                server, ours, peer, folder, live_options, Session, startup=False
            )
        finally:
            canned.close()

    report(figures)
    if options.json:
        Path(options.json).write_text(json.dumps(figures, indent=2))
    return figures


def _line(label: str, figures: dict, name: str, bare: str | None = None, target: str = "") -> str:
    text = (
        f"    {label:<40} {figures[name] * 1000:8.1f} ms median"
        f" {figures[name + '_best'] * 1000:8.1f} ms best"
    )
    if bare is not None:
        text += (
            f"   {figures[name] / figures[bare]:.2f}x / "
            f"{figures[name + '_best'] / figures[bare + '_best']:.2f}x bare"
        )
        if target:
            text += f"  (target {target})"
    return text


def report(figures: dict) -> None:
    print(
        f"reviewd.Session vs ftrack-python-api 3.1.0 ({figures['runs']} runs; ratios are "
        "median / best)"
    )
    start = figures["canned"]["startup"]
    print()
    print("(a) process start to ready Session, warm schema cache (canned server)")
    print(_line("bare limit (python + requests + 1 call)", start, "bare"))
    print(_line("reviewd", start, "reviewd", "bare", "1.25x"))
    print(_line("bare limit in the peer venv", start, "peer_bare"))
    print(_line("ftrack-python-api", start, "peer", "peer_bare"))
    for name, label in (("canned", "canned server"), ("live", "live DevServer")):
        query = figures[name]["query"]
        print()
        print(
            f"(b) query(...).all() of {query['count']} Tasks, 5 projections incl. "
            f"status.name ({label})"
        )
        print(_line("bare limit (same pages + json.loads)", query, "bare"))
        print(_line("reviewd", query, "reviewd", "bare", "2x"))
        print(_line("bare limit in the peer venv", query, "peer_bare"))
        print(_line("ftrack-python-api", query, "peer", "peer_bare"))
        print(
            f"    reviewd is {query['peer'] / query['reviewd']:.1f}x faster than the peer (medians)"
        )


if __name__ == "__main__":
    main()
