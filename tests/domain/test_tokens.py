import pytest
from itsdangerous import URLSafeTimedSerializer

from podium.domain.stage import HOST_ID, Role
from podium.domain.tokens import Grant, InviteGrant, TokenSigner
from podium.errors import Forbidden, Unauthenticated
from podium.ids import MemberId, SpaceId, UserId

SPACE = SpaceId("abcdefabcdef")
OTHER = SpaceId("zzzzzzzzzzzz")


def test_a_member_token_names_its_space_member_and_generation() -> None:
    signer = TokenSigner("s" * 40)
    grant = signer.verify_for(signer.issue(SPACE, HOST_ID, 3, Role.HOST), SPACE)
    assert grant == Grant(SPACE, HOST_ID, 3, Role.HOST)
    with pytest.raises(Forbidden, match="another space"):
        signer.verify_for(signer.issue(SPACE, HOST_ID, 0, Role.HOST), OTHER)


def test_invite_tokens_expire() -> None:
    signer = TokenSigner("s" * 40, invite_ttl_s=60)
    invite_id, token = signer.issue_invite(SPACE, Role.SPEAKER)
    grant = signer.verify(token)
    assert isinstance(grant, InviteGrant) and grant.invite_id == invite_id and grant.role is Role.SPEAKER
    assert grant.member_id == MemberId("i-" + invite_id)
    expired = TokenSigner("s" * 40, invite_ttl_s=-1)
    with pytest.raises(Forbidden, match="expired"):
        expired.verify(token)


@pytest.mark.parametrize(
    "forged", ["", "abc", "m.abc", "i.abc", "x" * 600, "m.eyJzIjoiYWJjZGVmYWJjZGVmIiwiciI6Imhvc3QifQ.AAAA"]
)
def test_forged_tokens_fail_the_signature_check(forged: str) -> None:
    with pytest.raises(Unauthenticated):
        TokenSigner("s" * 40).verify(forged)


def test_a_token_from_another_instance_is_refused() -> None:
    token = TokenSigner("a" * 40).issue(SPACE, HOST_ID, 0, Role.HOST)
    with pytest.raises(Unauthenticated):
        TokenSigner("b" * 40).verify(token)


def test_an_invite_signature_is_not_a_member_signature() -> None:
    """A token of one kind relabelled as the other fails: each kind has its own salt."""
    body = URLSafeTimedSerializer("s" * 40, salt="podium.invite.v1").dumps(
        {"s": SPACE, "m": "host", "g": 0, "r": "host"}
    )
    with pytest.raises(Unauthenticated):
        TokenSigner("s" * 40).verify("m." + str(body))


def test_each_sign_in_is_its_own_session_with_its_own_csrf_token() -> None:
    signer = TokenSigner("s" * 40)
    first = signer.verify_session(signer.issue_session(UserId("u1"), "ada"))
    second = signer.verify_session(signer.issue_session(UserId("u1"), "ada"))
    assert first.user_id == second.user_id == UserId("u1") and first.session_id != second.session_id
    assert signer.csrf_for(first.session_id) != signer.csrf_for(second.session_id)
    assert signer.csrf_for(first.session_id) == TokenSigner("s" * 40).csrf_for(first.session_id)
    assert signer.csrf_for(first.session_id) != TokenSigner("t" * 40).csrf_for(first.session_id)


def test_a_session_from_before_sign_out_existed_must_sign_in_again() -> None:
    body = URLSafeTimedSerializer("s" * 40, salt="podium.session.v1").dumps({"u": "u1", "n": "ada"})
    with pytest.raises(Unauthenticated, match="sign in again"):
        TokenSigner("s" * 40).verify_session("u." + str(body))
