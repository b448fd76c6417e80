import pytest

from podium.errors import InvalidOffer
from podium.media import sdp

OFFER = """v=0
o=- 1 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=fingerprint:sha-256 AA:BB
m=audio 9 UDP/TLS/RTP/SAVPF 111
c=IN IP4 0.0.0.0
a=mid:0
a=ice-ufrag:abcd
a=ice-pwd:0123456789abcdef012345
a=sendonly
a=rtpmap:111 opus/48000/2
a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host
a=candidate:2 1 udp 2130706431 192.0.2.7 50002 typ host
m=video 9 UDP/TLS/RTP/SAVPF 96
c=IN IP4 0.0.0.0
a=mid:1
a=ice-ufrag:abcd
a=ice-pwd:0123456789abcdef012345
a=rtpmap:96 VP8/90000
""".replace("\n", "\r\n")


def test_parses_a_browser_style_offer() -> None:
    offer = sdp.parse_offer(OFFER.encode(), 10_000)
    assert [s.kind for s in offer.sections] == ["audio", "video"]
    assert offer.declined == [1]
    audio_only = offer.audio_only()
    assert "m=video" not in audio_only and "a=group:BUNDLE 0\r\n" in audio_only


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"hello", "must start with 'v=0'"),
        (b"", "must start with 'v=0'"),
        (b"\xff\xfe", "not UTF-8"),
        (OFFER.replace("m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=text 9 X 1").encode(), "no audio section"),
        (OFFER.replace("opus/48000/2", "PCMU/8000").encode(), "no Opus"),
        (OFFER.replace("a=fingerprint:sha-256 AA:BB\r\n", "").encode(), "DTLS fingerprint"),
        (OFFER.replace("a=sendonly", "a=recvonly").encode(), "does not send audio"),
        (OFFER.replace("m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=audio").encode(), "malformed media line"),
        (OFFER.replace("s=-", "garbage").encode(), "malformed line"),
    ],
)
def test_bad_offers_are_refused_with_the_reason(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidOffer, match=reason):
        sdp.parse_offer(body, 10_000)


def test_size_limit() -> None:
    with pytest.raises(InvalidOffer, match="limit is 100"):
        sdp.parse_offer(OFFER.encode(), 100)


def test_declined_sections_come_back_in_place_with_port_zero() -> None:
    offer = sdp.parse_offer(OFFER.encode(), 10_000)
    answer = (
        "v=0\r\no=- 5 6 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
        "m=audio 40000 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"
    )
    full = sdp.answer_with_declined(answer, offer)
    media = [line for line in full.split("\r\n") if line.startswith("m=")]
    assert media == ["m=audio 40000 UDP/TLS/RTP/SAVPF 111", "m=video 0 UDP/TLS/RTP/SAVPF 96"]
    assert "a=mid:1" in full


def test_loopback_filter_keeps_only_loopback_candidates() -> None:
    kept = sdp.keep_loopback_candidates(OFFER)
    assert "127.0.0.1 50000" in kept and "192.0.2.7" not in kept


def test_the_answer_asks_for_opus_fec_on_every_opus_payload_type() -> None:
    answer = (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 109 0\r\n"
        "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=0\r\n"
        "a=rtpmap:109 OPUS/48000/2\r\n"
        "a=rtpmap:0 PCMU/8000\r\na=fmtp:0 something=1\r\n"
    )
    asked = sdp.ask_for_fec(answer)
    lines = asked.split("\r\n")
    # A sender's own "no" is replaced, other parameters kept; an Opus type without fmtp gets one.
    assert "a=fmtp:111 minptime=10;useinbandfec=1" in lines
    assert lines[lines.index("a=rtpmap:109 OPUS/48000/2") + 1] == "a=fmtp:109 useinbandfec=1"
    assert "a=fmtp:0 something=1" in lines and asked.count("useinbandfec") == 2
    assert sdp.ask_for_fec(asked) == asked  # asking twice changes nothing


@pytest.mark.parametrize(
    ("address", "loopback", "kept"),
    [
        ("203.0.113.9", False, True),  # documentation ranges: tests' and benchmarks' namespaces
        ("198.51.100.2", False, True),
        ("2001:db8::2", False, True),
        ("8.8.8.8", False, True),  # a public address
        ("192.168.1.20", False, True),  # a speaker on the stage's own LAN or VPN
        ("100.64.3.4", False, True),
        ("fd00::5", False, True),
        ("abcdef01-2345-6789-abcd-ef0123456789.local", False, True),  # a browser's mDNS host candidate
        ("127.0.0.1", False, False),
        ("127.0.0.1", True, True),  # PODIUM_ICE_LOOPBACK lets loopback in
        ("::1", False, False),
        ("::1", True, True),
        ("0.0.0.0", True, False),
        ("0.1.2.3", True, False),
        ("::", True, False),
        ("224.0.0.251", False, False),  # multicast
        ("ff02::1", False, False),
        ("255.255.255.255", False, False),  # broadcast
        ("240.0.0.1", False, False),  # reserved
        ("169.254.169.254", False, False),  # link-local: a cloud's metadata service
        ("fe80::1", False, False),
        ("::ffff:127.0.0.1", False, False),  # loopback inside IPv6
        ("64:ff9b::a9fe:a9fe", False, False),  # NAT64 to 169.254.169.254
        ("2002:e000:1::", False, False),  # 6to4 to 224.0.0.1
        ("::ffff:198.51.100.2", False, True),
        ("victim.example.org", False, False),  # a DNS name: the stage would look it up
        ("not an address", False, False),
    ],
)
def test_remote_candidates_are_only_addresses_a_speaker_can_have(address: str, loopback: bool, kept: bool) -> None:
    assert sdp.is_speaker_address(address, loopback) is kept


def test_an_offer_keeps_at_most_the_allowed_number_of_candidates_and_drops_the_rest() -> None:
    hostile = "".join(f"a=candidate:{n} 1 udp 2130706431 198.51.100.{n} {40000 + n} typ host\r\n" for n in range(100))
    hostile += "a=candidate:x 1 udp 1 224.0.0.1 5000 typ host\r\n"
    hostile += "a=candidate:y 1 udp 1 198.51.100.200 0 typ host\r\n"  # port 0
    hostile += "a=candidate:z 1 udp 1 198.51.100.201 typ host\r\n"  # cut short
    offer = OFFER.replace("a=candidate:1 ", hostile + "a=candidate:1 ")
    kept = [line for line in sdp.filter_remote_candidates(offer, False, 5).split("\r\n") if "candidate" in line]
    assert [line.split()[4] for line in kept] == [f"198.51.100.{n}" for n in range(5)]
    every = [line for line in sdp.filter_remote_candidates(OFFER, False).split("\r\n") if "candidate" in line]
    assert [line.split()[4] for line in every] == ["192.0.2.7"]  # loopback dropped, TEST-NET kept
    assert "a=mid:0" in sdp.filter_remote_candidates(offer, False, 5)  # nothing else touched
