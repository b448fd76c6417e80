"""URLs of named routes, built from the route table (`podium.web.routes`): no path is spelled twice."""

from __future__ import annotations

from podium.urls import fill


def url_path(name: str, **params: str) -> str:
    """The path of a named route with its parameters filled in: `url_path("page.listen", space_id=…)`."""
    from podium.web.routes import TABLE  # here, not above: the table imports the handlers, which call this

    return fill(TABLE.by_name[name].path, **params)
