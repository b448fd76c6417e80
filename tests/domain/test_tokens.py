import pytest

from podium.domain.tokens import Role, TokenSigner
from podium.errors import Forbidden, Unauthenticated
from podium.ids import SpaceId

SPACE = SpaceId("abcdefabcdef")
OTHER = SpaceId("zzzzzzzzzzzz")


def test_a_host_token_opens_its_own_space_only() -> None:
    signer = TokenSigner("s" * 40)
    token = signer.issue(SPACE, Role.HOST)
    assert signer.require(token, SPACE, Role.HOST).role is Role.HOST
    with pytest.raises(Forbidden, match="another space"):
        signer.require(token, OTHER, Role.HOST)


def test_a_listener_token_cannot_act_as_host() -> None:
    signer = TokenSigner("s" * 40)
    with pytest.raises(Forbidden, match="host"):
        signer.require(signer.issue(SPACE, Role.LISTENER), SPACE, Role.HOST)


@pytest.mark.parametrize("forged", ["", "abc", "x" * 600, "eyJzIjoiYWJjZGVmYWJjZGVmIiwiciI6Imhvc3QifQ.AAAA"])
def test_forged_tokens_fail_the_signature_check(forged: str) -> None:
    with pytest.raises(Unauthenticated):
        TokenSigner("s" * 40).verify(forged)


def test_a_token_from_another_instance_is_refused() -> None:
    token = TokenSigner("a" * 40).issue(SPACE, Role.HOST)
    with pytest.raises(Unauthenticated):
        TokenSigner("b" * 40).verify(token)
