import pytest
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer

from podium.domain.stage import HOST_ID, Role
from podium.domain.tokens import MEMBER_TOKEN_TTL_S, Grant, InviteGrant, TokenSigner
from podium.errors import Forbidden, Unauthenticated
from podium.ids import MemberId, SpaceId, UserId

SPACE = SpaceId("abcdefabcdef")
OTHER = SpaceId("zzzzzzzzzzzz")


def test_a_member_token_names_its_space_member_and_generation() -> None:
    signer = TokenSigner("s" * 40, now=lambda: 1_000_000.0)
    grant = signer.verify_for(signer.issue(SPACE, HOST_ID, 3, Role.HOST), SPACE)
    assert grant == Grant(SPACE, HOST_ID, 3, Role.HOST, 1_000_000 + MEMBER_TOKEN_TTL_S)
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


def test_member_tokens_expire_after_their_lifetime_or_past_the_start() -> None:
    clock = [1_000_000.0]
    signer = TokenSigner("s" * 40, member_ttl_s=3600, now=lambda: clock[0])
    guest = signer.issue(SPACE, MemberId("g1"), 0, Role.LISTENER)
    host = signer.issue(SPACE, HOST_ID, 0, Role.HOST, valid_from=clock[0] + 86400)  # starts tomorrow
    clock[0] += 3599
    assert signer.verify(guest).member_id == MemberId("g1")
    clock[0] += 1
    with pytest.raises(Unauthenticated, match="expired"):
        signer.verify(guest)
    assert signer.verify(host).member_id == HOST_ID  # good until an hour past its start
    clock[0] += 86400
    with pytest.raises(Unauthenticated, match="expired"):
        signer.verify(host)


def test_a_member_token_from_before_expiry_existed_is_still_taken() -> None:
    """Issued by an older Podium, without `x`: its generation still ends it (the host rotates)."""
    body = URLSafeSerializer("s" * 40, salt="podium.member.v1").dumps({"s": SPACE, "m": "host", "g": 0, "r": "host"})
    assert TokenSigner("s" * 40).verify("m." + str(body)) == Grant(SPACE, HOST_ID, 0, Role.HOST, None)


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
