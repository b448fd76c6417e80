"""URLs of named routes, built from the route table (`podium.web.routes`): no path is spelled twice."""

from __future__ import annotations

import re
from functools import cache


@cache
def _template(name: str) -> str:
    # Read on first use: the table imports the handlers, which build URLs with this.
    from podium.web.routes import TABLE

    return TABLE.by_name[name].path


def url_path(name: str, **params: str) -> str:
    """The path of a named route with its parameters filled in: `url_path("page.listen", space_id=…)`."""
    path = _template(name)
    for key, value in params.items():
        path = re.sub(r"\{" + key + r"(:[a-z]+)?\}", value, path)
    assert "{" not in path, f"{name}: a parameter is missing in {path}"
    return path
