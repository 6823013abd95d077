"""``python -m jupyter_pipelines`` is the CLI."""

from .cli import main

raise SystemExit(main())
