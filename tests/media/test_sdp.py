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
