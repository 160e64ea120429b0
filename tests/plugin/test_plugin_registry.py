"""What plugins declare: subscription options, retry policies, the registry itself."""

from __future__ import annotations

import pytest

from reviewd.api.exception import PluginError
from reviewd.plugin.registry import RetryPolicy, SubscriptionOptions, SubscriptionRegistry


def test_registry_accepts_a_handler_or_works_as_a_decorator():
    registry = SubscriptionRegistry("verdicts")

    def on_update(event):
        return "update"

    declaration = registry.subscribe("topic=ftrack.update", on_update, timeout=2)

    @registry.subscribe("topic=ftrack.action.launch", priority=1, metadata={"label": "Bell"})
    def on_launch(event):
        return "launch"

    assert on_launch({}) == "launch"  # the decorator hands the function back unchanged
    first, second = registry.declarations
    assert first is declaration and first.handler is on_update and first.options.timeout == 2
    assert second.handler is on_launch and second.options.priority == 1
    assert second.metadata == {"label": "Bell"}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.subscribe("topic=a and", print), "invalid subscription 'topic=a and'"),
        (lambda r: r.subscribe(42, print), "must be an expression string"),
        (lambda r: r.subscribe("topic=a", "not callable"), "is not callable"),
        (lambda r: r.subscribe("topic=a", print, timeout=0), "timeout must be a positive number"),
        (lambda r: r.subscribe("topic=a", print, timeout=float("inf")), "timeout must be"),
        (lambda r: r.subscribe("topic=a", print, priority="high"), "priority must be an integer"),
        (lambda r: r.subscribe("topic=a", print, concurrency=True), "concurrency must be"),
        (
            lambda r: r.subscribe("topic=a", print, retry=3),
            "retry must be a reviewd.plugin.registry.RetryPolicy",
        ),
    ],
)
def test_invalid_declarations_are_refused_with_the_reason(call, message):
    registry = SubscriptionRegistry("p")
    with pytest.raises(PluginError, match=message.replace("(", r"\(").replace(".", r"\.")):
        call(registry)
    assert registry.declarations == []  # nothing half-declared is kept


def test_retry_delays_grow_and_are_capped():
    policy = RetryPolicy(max_attempts=6, initial_delay=0.5, max_delay=3.0, multiplier=2.0)
    assert [policy.delay(n) for n in range(0, 6)] == [0.0, 0.5, 1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize(
    "arguments",
    [
        {"max_attempts": 0},
        {"max_attempts": 1.5},
        {"initial_delay": -1},
        {"multiplier": 0.5},
        {"max_delay": float("nan")},
    ],
)
def test_invalid_retry_policies_are_refused(arguments):
    with pytest.raises(PluginError):
        RetryPolicy(**arguments)


def test_defaults_leave_timeout_and_retry_to_the_daemon():
    options = SubscriptionOptions()
    assert (options.priority, options.concurrency, options.timeout, options.retry) == (
        100,
        1,
        None,
        None,
    )
