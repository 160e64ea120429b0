"""Structures: where in a location's storage each component's data is placed."""
