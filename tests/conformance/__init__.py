"""Run ftrack's own client test suite against the embedded server (see ``run.py``)."""
