"""Whether the simulator's web stack (the `sim` extra) is installed, checked without importing it.

starlette, uvicorn and python-multipart serve only the simulator, so a plain
`pip install batchdash` leaves them out; `batchdash demo`, `batchdash sim-server` and
`python -m batchdash.core.sim` call `missing_message()` first and stop with its one line.
"""

from __future__ import annotations

import importlib.util

INSTALL_HINT = "pip install 'batchdash[sim]'"

#: Distribution name -> the import names that provide it (python-multipart renamed its
#: module to `python_multipart` and keeps `multipart` as an alias).
_MODULES = {
    "starlette": ("starlette",),
    "uvicorn": ("uvicorn",),
    "python-multipart": ("python_multipart", "multipart"),
}


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # a parent package or an import hook refused it
        return False


def missing_message() -> str | None:
    """One line naming the simulator's missing packages and how to install them, or None."""
    missing = [dist for dist, names in _MODULES.items() if not any(map(_importable, names))]
    if not missing:
        return None
    return f"the simulator's packages are not installed ({', '.join(missing)}): {INSTALL_HINT}"
