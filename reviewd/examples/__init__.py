"""Where the example plugins are, however reviewd was installed.

The example review-workflow plugins (``verdicts_to_status``, ``version_to_review``,
``review_digest``, ``status_rollup``) are a plugin *folder*, not modules of this
package: loading them is an explicit choice (``--plugin-path``), never a side effect of
installing reviewd, because they change statuses on the server they are pointed at.
An installed wheel carries them in ``reviewd/examples/plugins/`` (the build copies the
repository's ``plugins/`` there); in a source checkout they are ``plugins/`` itself.

``python -m reviewd.examples`` prints the folder, for shell use::

    reviewd plugins check "$(python -m reviewd.examples)"
    reviewd --foreground --plugin-path "$(python -m reviewd.examples)"
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["plugin_path"]

_PACKAGED = Path(__file__).resolve().parent / "plugins"
_CHECKOUT = Path(__file__).resolve().parents[2] / "plugins"


def plugin_path() -> Path:
    """The folder holding the example plugins: the wheel's copy, else the checkout's.

    Raises :class:`FileNotFoundError` naming both places when neither exists (an
    install made without the build step that copies them).
    """
    for candidate in (_PACKAGED, _CHECKOUT):
        if any(candidate.glob("*.py")):
            return candidate
    raise FileNotFoundError(
        f"the example plugins are in neither {_PACKAGED} (an installed wheel) nor "
        f"{_CHECKOUT} (a source checkout); reinstall reviewd from its wheel"
    )
