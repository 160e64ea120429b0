"""How fast the embedded server answers a 10,000-row, five-projection query.

    .venv/bin/python benchmarks/bench_devserver_query.py [--rows 10000] [--repeat 5]

Reports three figures for the same query: the server's own work (query + projection +
JSON encoding, no HTTP), the full HTTP round trip with ``requests``, and rows/second.
Client benchmarks use this server, so it must stay far below their own figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import requests

from reviewd.devserver import DevServer
from reviewd.devserver.seed import seed_id

EXPRESSION = (
    "select name, status.name, parent.name, type.name, priority.name from Task "
    "where parent.parent.name is SQ010 limit {rows}"
)


def populate(server: DevServer, rows: int) -> None:
    shots = [seed_id("Shot", "SQ010", shot) for shot in ("SH010", "SH020", "SH030")]
    statuses = [seed_id("Status", name) for name in ("Not started", "In progress", "Approved")]
    types = [seed_id("Type", name) for name in ("Animation", "Lighting", "Compositing")]
    existing = 9  # the demo seed's tasks under SQ010
    operations = [
        {
            "action": "create",
            "entity_type": "Task",
            "entity_key": [None],
            "entity_data": {
                "__entity_type__": "Task",
                "name": f"task_{number:05d}",
                "parent_id": shots[number % 3],
                "status_id": statuses[number % 3],
                "type_id": types[(number // 3) % 3],
            },
        }
        for number in range(max(0, rows - existing))
    ]
    server.execute_batch(operations, server.api_user)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    expression = EXPRESSION.format(rows=args.rows)
    with DevServer() as server:
        started = time.perf_counter()
        populate(server, args.rows)
        print(f"populated {args.rows} tasks in {time.perf_counter() - started:.2f} s")
        batch = [{"action": "query", "expression": expression}]

        server_times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            results, _ = server.executor.execute(batch, server.api_user)
            json.dumps(results)
            server_times.append(time.perf_counter() - started)
        count = len(results[0]["data"])
        assert count == args.rows, f"expected {args.rows} rows, got {count}"

        http = requests.Session()
        headers = {"ftrack-user": server.api_user, "ftrack-api-key": server.api_key}
        http_times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            reply = http.post(server.url + "/api", json=batch, headers=headers, timeout=120).json()
            http_times.append(time.perf_counter() - started)
        assert len(reply[0]["data"]) == args.rows

    server_best, http_best = min(server_times), min(http_times)
    print(f"query: {expression}")
    print(
        f"server work (query+projection+JSON): best {server_best * 1000:.0f} ms, "
        f"median {statistics.median(server_times) * 1000:.0f} ms"
    )
    print(
        f"HTTP round trip (requests, incl. client JSON decode): best {http_best * 1000:.0f} ms, "
        f"median {statistics.median(http_times) * 1000:.0f} ms"
    )
    print(f"throughput: {args.rows / server_best:,.0f} rows/s server-side")
    return 0


if __name__ == "__main__":
    sys.exit(main())
