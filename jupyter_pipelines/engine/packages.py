"""Installed package versions of the modules steps import, for their signatures: upgrading pandas reruns what uses it.

:func:`lookup_versions` is the one lookup, called once per run for every module the run's steps import. Mapping a
module to its distribution (``sklearn`` -> ``scikit-learn``) takes ``importlib.metadata.packages_distributions()``,
which reads every installed distribution's metadata (~85 ms here, plus ~35 ms to import ``importlib.metadata``),
so the answer is remembered in ``.pipelines/packages.json`` under a key that any install, upgrade or removal
changes: the interpreter and the modification times of the ``sys.path`` directories (pip adds and removes
``*.dist-info`` directories there). A run whose environment did not change pays a few ``stat`` calls.

Standard-library modules and modules that are not installed distributions (local files) are not looked up here:
the signature counts the Python version for the first and the file's content for the second.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

CACHE_VERSION = 1
STDLIB = frozenset(sys.stdlib_module_names) | frozenset(sys.builtin_module_names)


def python_version() -> str:
    """``CPython 3.11.7``: a step's result may depend on the interpreter as much as on any package."""
    info = sys.version_info
    return f"{sys.implementation.name} {info.major}.{info.minor}.{info.micro}"


def is_stdlib(module: str) -> bool:
    return module in STDLIB


def environment_key() -> list[list[object]]:
    """What changes whenever a distribution is installed, upgraded or removed (stat calls only)."""
    key: list[list[object]] = [[sys.executable, sys.version]]
    for entry in sys.path:
        try:
            key.append([entry, os.stat(entry or ".").st_mtime_ns])
        except OSError:
            key.append([entry, None])
    return key


def lookup_versions(modules: Iterable[str], cache_file: Path | None = None) -> dict[str, str]:
    """``{module: "distribution version"}`` for the modules that come from installed distributions.

    Modules of several distributions (namespace packages) list each, ``"; "``-separated. Modules that are not
    installed, and standard-library ones, are left out.
    """
    wanted = sorted({m for m in modules if m and not is_stdlib(m)})
    if not wanted:
        return {}
    key = environment_key()
    cached = _read(cache_file)
    if cached.get("key") == key and all(m in cached["modules"] for m in wanted):
        known: dict[str, str | None] = cached["modules"]
    else:
        known = dict(cached.get("modules", {})) if cached.get("key") == key else {}
        known.update(_look_up(wanted))
        _write(cache_file, {"version": CACHE_VERSION, "key": key, "modules": known})
    return {m: version for m in wanted if (version := known.get(m))}


def _look_up(modules: list[str]) -> dict[str, str | None]:
    import importlib.metadata as metadata

    distributions = metadata.packages_distributions()
    found: dict[str, str | None] = {}
    for module in modules:
        names = sorted(set(distributions.get(module, ())))
        versions = [f"{name} {version}" for name in names if (version := distribution_version(name))]
        found[module] = "; ".join(versions) or None
    return found


def distribution_version(name: str) -> str | None:
    """An installed distribution's version, or None."""
    import importlib.metadata as metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _read(path: Path | None) -> dict:  # type: ignore[type-arg]
    if path is None:
        return {}
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("version") == CACHE_VERSION else {}


def _write(path: Path | None, data: dict) -> None:  # type: ignore[type-arg]
    if path is None:
        return
    from . import runtime

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = runtime.open_temp(str(path.parent), "w")
        with handle:
            json.dump(data, handle)
        os.replace(temp, path)
    except OSError:
        pass  # only a cache: the next run looks up again
