"""Which URLs from the kernel the widget may turn into links: console pages, ``https://`` only.

Cloud events carry console URLs built by the follow loop; the widget still treats them as untrusted text. Anything
that is not a plain ``https://`` URL (``javascript:``, ``data:``, ``http://``, control characters) is dropped, so
the browser never gets a link it could not safely open in a new tab. The frontend checks the scheme again.
"""

from __future__ import annotations

MAX_URL = 2048


def safe_url(url: object) -> str | None:
    """``url`` when it is an ``https://`` URL without whitespace or control characters, else None."""
    if not isinstance(url, str) or len(url) > MAX_URL or not url.lower().startswith("https://"):
        return None
    if len(url) == len("https://") or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return None
    return url


def short_run_id(run_id: str) -> str:
    """A run id fit for a status line: a SageMaker execution ARN shows as its last segment (the execution id)."""
    return run_id.rsplit("/", 1)[-1] if run_id.startswith("arn:") else run_id
