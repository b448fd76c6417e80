"""URLs of named routes, built from the route table (`podium.web.routes`): no path is spelled twice."""

from __future__ import annotations

from functools import cache

from podium.urls import fill


@cache
def _template(name: str) -> str:
    # Read on first use: the table imports the handlers, which build URLs with this.
    from podium.web.routes import TABLE

    return TABLE.by_name[name].path


def url_path(name: str, **params: str) -> str:
    """The path of a named route with its parameters filled in: `url_path("page.listen", space_id=…)`."""
    return fill(_template(name), **params)
