"""Signed listener links: checked by signature and window alone."""

from __future__ import annotations

import base64
import hashlib

import pytest

from podium.delivery.links import ROUND_S, LinkSigner, link_key
from podium.errors import Forbidden

SPACE = "abcdefghijkl"
NOW = 1_800_000_000.0


def test_a_link_works_inside_its_window_only() -> None:
    signer = LinkSigner(link_key("s" * 48))
    token = signer.token(SPACE, int(NOW) - 10, int(NOW) + 3600)
    assert signer.check(token, SPACE, NOW).expires == int(NOW) + 3600
    with pytest.raises(Forbidden, match="not valid yet"):
        signer.check(token, SPACE, NOW - 11)
    with pytest.raises(Forbidden, match="expired"):
        signer.check(token, SPACE, NOW + 3600)


@pytest.mark.parametrize("change", ["space", "window", "mac", "shape", "key"])
def test_an_altered_or_foreign_link_is_refused(change: str) -> None:
    signer = LinkSigner(link_key("s" * 48))
    token = signer.token(SPACE, int(NOW) - 10, int(NOW) + 3600)
    nbf, exp, mac, edge = token.split(".")
    space = SPACE
    if change == "space":
        space = "zzzzzzzzzzzz"
    elif change == "window":
        token = f"{nbf}.{int(exp) + 86400}.{mac}.{edge}"
    elif change == "mac":
        token = f"{nbf}.{exp}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}.{edge}"
    elif change == "shape":
        token = token + ".x"
    else:
        signer = LinkSigner(link_key("t" * 48))
    with pytest.raises(Forbidden, match="not valid"):
        signer.check(token, space, NOW)


def test_the_edge_part_is_what_nginx_secure_link_computes() -> None:
    key = link_key("s" * 48)
    token = LinkSigner(key).token(SPACE, 100, 200)
    expected = base64.urlsafe_b64encode(hashlib.md5(f"200{SPACE}100 {key}".encode()).digest()).decode().rstrip("=")
    assert token.split(".")[3] == expected


def test_listeners_let_in_within_the_same_minutes_share_one_link() -> None:
    signer = LinkSigner(link_key("s" * 48))
    start = NOW - NOW % ROUND_S
    first = signer.rounded_token(SPACE, start + 5, 3600)
    later = signer.rounded_token(SPACE, start + ROUND_S - 5, 3600)
    assert first == later
    window = signer.check(first, SPACE, start + 5)
    assert window.expires - (start + 5) >= 3600 and window.expires % ROUND_S == 0


def test_withdrawn_links_fail_and_generation_zero_signs_as_before() -> None:
    signer = LinkSigner(link_key("s" * 48))
    before = signer.token(SPACE, int(NOW) - 10, int(NOW) + 3600)
    assert before == signer.token(SPACE, int(NOW) - 10, int(NOW) + 3600, generation=0)
    with pytest.raises(Forbidden, match="withdrawn"):
        signer.check(before, SPACE, NOW, generation=1)
    after = signer.token(SPACE, int(NOW) - 10, int(NOW) + 3600, generation=1)
    assert after.split(".")[3] == before.split(".")[3]  # the edge's part is the same: nginx still checks it
    assert signer.check(after, SPACE, NOW, generation=1).expires == int(NOW) + 3600
    with pytest.raises(Forbidden, match="not valid"):
        signer.check(after, SPACE, NOW, generation=2)
