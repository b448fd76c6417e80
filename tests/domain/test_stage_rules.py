import pytest

from podium.domain.stage import HOST_ID, Role, StageRules, enforce
from podium.errors import Conflict, Forbidden, InvalidInput
from podium.ids import MemberId

GUEST = MemberId("guest")
OTHER = MemberId("other")


def test_a_token_from_before_a_demotion_stays_dead_after_coming_back() -> None:
    rules = StageRules()
    speaker = rules.redeem("invite-1", Role.SPEAKER, GUEST, "Guest")
    old_generation = speaker.generation
    assert rules.may_publish(GUEST, old_generation)
    rules.move_to_audience(HOST_ID, GUEST)
    rules.raise_hand(GUEST)
    rules.accept_hand(HOST_ID, GUEST)
    assert rules.members[GUEST].role is Role.SPEAKER
    assert not rules.may_publish(GUEST, old_generation)  # the reconnect with the old token fails
    assert rules.may_publish(GUEST, rules.members[GUEST].generation)
    with pytest.raises(Forbidden, match="revoked"):
        rules.check_token(GUEST, old_generation)


def test_invites_work_once_and_only_the_host_invites_cohosts() -> None:
    rules = StageRules()
    rules.redeem("invite-1", Role.COHOST, OTHER, "Co")
    rules.check_invite(OTHER, Role.SPEAKER)
    with pytest.raises(Forbidden, match="only the host invites co-hosts"):
        rules.check_invite(OTHER, Role.COHOST)
    with pytest.raises(Forbidden, match="used already"):
        rules.redeem("invite-1", Role.SPEAKER, GUEST, "Guest")
    with pytest.raises(InvalidInput):
        rules.check_invite(HOST_ID, Role.LISTENER)


def test_only_the_host_ends_and_nobody_moderates_the_host() -> None:
    rules = StageRules()
    rules.redeem("i", Role.COHOST, OTHER, "Co")
    with pytest.raises(Forbidden, match="only the host ends"):
        rules.end(OTHER)
    for action in ("move_to_audience", "mute", "remove", "block"):
        with pytest.raises(Forbidden):
            getattr(rules, action)(OTHER, HOST_ID)
    rules.end(HOST_ID)
    assert rules.ended and not rules.may_publish(HOST_ID, 0)


def test_mute_is_undone_only_by_the_speaker() -> None:
    rules = StageRules()
    rules.redeem("i", Role.SPEAKER, GUEST, "Guest")
    rules.mute(HOST_ID, GUEST)
    assert not rules.mixable(GUEST) and rules.may_publish(GUEST, 0)
    with pytest.raises(Forbidden, match="only the speaker"):
        rules.unmute(HOST_ID, GUEST)
    rules.unmute(GUEST, GUEST)
    assert rules.mixable(GUEST)


def test_blocked_members_cannot_come_back() -> None:
    rules = StageRules()
    rules.join(GUEST, "Guest")
    rules.block(HOST_ID, GUEST)
    with pytest.raises(Forbidden, match="blocked"):
        rules.raise_hand(GUEST)
    with pytest.raises(Forbidden):
        rules.check_token(GUEST, rules.members[GUEST].generation)


def test_stage_and_cohost_limits() -> None:
    rules = StageRules(max_cohosts=1, max_speakers=3)
    rules.redeem("a", Role.COHOST, MemberId("a"), "A")
    with pytest.raises(Conflict, match="co-hosts already"):
        rules.redeem("b", Role.COHOST, MemberId("b"), "B")
    rules.redeem("c", Role.SPEAKER, MemberId("c"), "C")
    with pytest.raises(Conflict, match="stage is full"):
        rules.redeem("d", Role.SPEAKER, MemberId("d"), "D")


def test_enforce_closes_lost_sessions_and_silences_muted_ones() -> None:
    rules = StageRules()
    rules.redeem("a", Role.SPEAKER, GUEST, "Guest")
    rules.redeem("b", Role.SPEAKER, OTHER, "Other")
    sessions = {1: (HOST_ID, 0), 2: (GUEST, 0), 3: (OTHER, 0)}
    rules.move_to_audience(HOST_ID, GUEST)
    rules.mute(HOST_ID, OTHER)
    assert enforce(rules, sessions) == ({2}, {3})


def test_rotating_the_host_token_ends_the_old_one_and_only_the_host_rotates() -> None:
    rules = StageRules()
    rules.redeem("invite-1", Role.COHOST, OTHER, "Co")
    with pytest.raises(Forbidden, match="only the host"):
        rules.rotate_host(OTHER)
    rules.rotate_host(HOST_ID)
    with pytest.raises(Forbidden, match="revoked"):
        rules.check_token(HOST_ID, 0)
    assert rules.check_token(HOST_ID, 1).role is Role.HOST
    assert enforce(rules, {"old": (HOST_ID, 0), "new": (HOST_ID, 1)})[0] == {"old"}
    restored = StageRules.from_dict(rules.to_dict(), 2, 13)
    assert restored.members[HOST_ID].generation == 1


def test_listener_links_are_withdrawn_by_moderators_only_and_the_generation_is_kept() -> None:
    rules = StageRules()
    rules.join(GUEST, "Guest")
    with pytest.raises(Forbidden, match="only the host and co-hosts"):
        rules.withdraw_links(GUEST)
    assert rules.withdraw_links(HOST_ID) == 1
    rules.end(HOST_ID)
    assert rules.withdraw_links(HOST_ID) == 2  # a replay's links can be withdrawn after the end
    assert StageRules.from_dict(rules.to_dict(), 2, 13).link_generation == 2
    assert StageRules.from_dict({"members": []}, 2, 13).link_generation == 0  # stored before generations


def test_guests_waiting_in_the_audience_are_bounded_and_a_moderator_frees_places() -> None:
    rules = StageRules(max_guests=3)
    for n in range(3):
        rules.join(MemberId(f"g{n}"), f"Guest {n}")
    with pytest.raises(Conflict, match="3 guests are waiting already"):
        rules.join(MemberId("g3"), "One too many")
    assert MemberId("g3") not in rules.members and rules.waiting_guests() == 3
    # A removal, a block, a turn on stage: each frees a place.
    rules.remove(HOST_ID, MemberId("g0"))
    rules.join(MemberId("g3"), "Guest 3")
    rules.block(HOST_ID, MemberId("g1"))
    rules.join(MemberId("g4"), "Guest 4")
    rules.raise_hand(MemberId("g2"))
    rules.accept_hand(HOST_ID, MemberId("g2"))
    rules.join(MemberId("g5"), "Guest 5")
    with pytest.raises(Conflict, match="audience is full"):
        rules.join(MemberId("g6"), "Guest 6")
    # Kept across a restart: the stored state brings the same bound back.
    stored = StageRules.from_dict(rules.to_dict(), max_cohosts=2, max_speakers=13, max_guests=3)
    with pytest.raises(Conflict, match="audience is full"):
        stored.join(MemberId("g6"), "Guest 6")
