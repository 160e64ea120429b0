"""reviewd's reliability suite: fault scenarios with measured outcomes.

``python -m reliability`` (from the repository root) runs every scenario in its short
form; ``--long`` runs the long forms and writes ``reliability-report.md``.  The same
scenarios run short in CI through ``tests/reliability/``.  Everything runs on loopback:
a real ``reviewd`` process, a real embedded server process, real sockets.
"""
