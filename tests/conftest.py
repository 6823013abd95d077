from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .kernel import Kernel


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Kernel]:
    """A fresh real IPython kernel whose working directory is ``tmp_path`` (the notebook's directory)."""
    k = Kernel(tmp_path)
    try:
        yield k
    finally:
        k.close()


from .aws_support import aws, moto_server  # noqa: E402, F401  (fixtures: a real local AWS endpoint)
from .container_support import container_engine  # noqa: E402, F401  (fixture: a Docker-compatible engine)
