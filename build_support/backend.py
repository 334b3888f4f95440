"""setuptools' PEP 517 build backend, asking for mypy too when the wheel is compiled.

`LLM_GATEWAY_COMPILE=1 pip install .` (setup.py) compiles the request path with
mypyc, which comes with mypy; pip builds in an isolated environment holding
only what the backend asks for, so mypy is asked for here, and only then: a
plain build or editable install does not download it.
"""

from __future__ import annotations

import os

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (every other hook, unchanged)

_COMPILER = ["mypy>=1.10"]


def _compiling() -> bool:
    return os.environ.get("LLM_GATEWAY_COMPILE", "").strip() == "1"


def get_requires_for_build_wheel(config_settings: dict[str, str] | None = None) -> list[str]:
    if _compiling():
        # setuptools' own hook would run setup.py, which imports mypyc: not there yet.
        # It would only add setup.py's setup_requires, and there are none.
        return list(_COMPILER)
    requires: list[str] = list(_setuptools.get_requires_for_build_wheel(config_settings))
    return requires
