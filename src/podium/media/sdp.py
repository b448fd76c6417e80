"""Checking and shaping SDP for WHIP: what Podium accepts from a speaker and what it answers.

Pure text functions. Podium takes audio only: other media sections are answered as declined
(port 0) in their place, as JSEP requires, instead of failing the whole offer.
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass

from podium.addresses import LOCAL_NAT64, embedded_ipv4
from podium.errors import InvalidOffer


@dataclass(frozen=True)
class Section:
    kind: str  # "audio", "video", "application", ...
    lines: tuple[str, ...]

    @property
    def mid(self) -> str | None:
        for line in self.lines:
            if line.startswith("a=mid:"):
                return line[6:].strip()
        return None


@dataclass(frozen=True)
class Offer:
    session: tuple[str, ...]
    sections: tuple[Section, ...]

    @property
    def wants_return_audio(self) -> bool:
        """True when the first audio section also receives (sendrecv): a speaker who listens back."""
        audio = next(s for s in self.sections if s.kind == "audio")
        directions = {"a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"}
        stated = [line.strip() for line in audio.lines if line.strip() in directions]
        return not stated or stated[0] == "a=sendrecv"

    @property
    def declined(self) -> list[int]:
        return [i for i, s in enumerate(self.sections) if s.kind != "audio"]

    def audio_only(self) -> str:
        """The offer without the sections Podium declines, with BUNDLE trimmed to match."""
        keep = [s for s in self.sections if s.kind == "audio"]
        mids = {s.mid for s in keep}
        session = [_trim_bundle(line, mids) for line in self.session]
        return _join(session, [line for s in keep for line in s.lines])


def parse_offer(body: bytes, max_bytes: int) -> Offer:
    if len(body) > max_bytes:
        raise InvalidOffer(f"the SDP offer is {len(body)} bytes; the limit is {max_bytes}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidOffer("the SDP offer is not UTF-8 text") from None
    lines = [line.rstrip("\r") for line in text.split("\n") if line.strip()]
    if not lines or lines[0] != "v=0":
        raise InvalidOffer("the body is not an SDP offer: it must start with 'v=0'")
    for line in lines:
        if len(line) < 2 or line[1] != "=":
            raise InvalidOffer(f"the SDP offer has a malformed line: {line[:60]!r}")
    session, media = _split(lines)
    sections = [_section(section) for section in media]
    audio = [s for s in sections if s.kind == "audio"]
    if not audio:
        raise InvalidOffer("the SDP offer has no audio section (m=audio)")
    for section in audio:
        _check_audio(section, session)
    return Offer(tuple(session), tuple(sections))


def _split(lines: list[str]) -> tuple[list[str], list[list[str]]]:
    """The session's lines, then each media section's (from its m= line on)."""
    starts = [i for i, line in enumerate(lines) if line.startswith("m=")] + [len(lines)]
    return lines[: starts[0]], [lines[a:b] for a, b in itertools.pairwise(starts)]


def _section(lines: list[str]) -> Section:
    parts = lines[0][2:].split()
    if len(parts) < 4:
        raise InvalidOffer(f"the SDP offer has a malformed media line: {lines[0][:60]!r}")
    return Section(kind=parts[0], lines=tuple(lines))


def _check_audio(section: Section, session: list[str]) -> None:
    attributes = list(section.lines) + session
    if not any(line.lower().startswith("a=rtpmap:") and " opus/48000" in line.lower() for line in section.lines):
        raise InvalidOffer("the audio section offers no Opus codec; Podium needs Opus at 48 kHz")
    for name, what in (
        ("a=ice-ufrag:", "ICE username"),
        ("a=ice-pwd:", "ICE password"),
        ("a=fingerprint:", "DTLS fingerprint"),
    ):
        if not any(line.startswith(name) for line in attributes):
            raise InvalidOffer(f"the SDP offer has no {what} ({name[:-1]})")
    if any(line.strip() in ("a=recvonly", "a=inactive") for line in section.lines):
        raise InvalidOffer("the audio section does not send audio (it is recvonly or inactive)")


def answer_with_declined(answer: str, offer: Offer) -> str:
    """Put the declined sections back into aiortc's audio-only answer, in offer order, port 0."""
    if not offer.declined:
        return answer
    session, answered = _split([line.rstrip("\r") for line in answer.split("\n") if line.strip()])
    out: list[str] = []
    answered_iter = iter(answered)
    for section in offer.sections:
        if section.kind == "audio":
            out.extend(next(answered_iter, []))
        else:
            kind, _port, proto, *fmts = section.lines[0][2:].split()
            out.append(f"m={kind} 0 {proto} {fmts[0]}")
            out.append("c=IN IP4 0.0.0.0")
            if section.mid is not None:
                out.append(f"a=mid:{section.mid}")
            out.append("a=inactive")
    return _join(session, out)


def ask_for_fec(answer: str) -> str:
    """Ask the speaker's encoder for Opus in-band FEC: `useinbandfec=1` on every Opus payload type.

    RFC 7587: the parameter says what the *receiver* of a stream can use, so it belongs in the
    stage's answer; browsers and OBS send FEC (about one frame of speech at low rate, carried in the
    next packet) only when it is there, and the stage's decoder rebuilds a lost frame from it."""
    lines = [line for line in answer.replace("\r\n", "\n").split("\n") if line]
    opus = {_payload_type(line) for line in lines if line.startswith("a=rtpmap:") and _is_opus(line)}
    stated = {_payload_type(line) for line in lines if line.startswith("a=fmtp:")}
    out: list[str] = []
    for line in lines:
        payload_type = _payload_type(line) if line.startswith(("a=rtpmap:", "a=fmtp:")) else None
        if line.startswith("a=fmtp:") and payload_type in opus:
            params = [p for p in line.split(" ", 1)[1].split(";") if p.strip().split("=")[0] != "useinbandfec"]
            line = f"a=fmtp:{payload_type} " + ";".join([*(p.strip() for p in params if p.strip()), "useinbandfec=1"])
        out.append(line)
        if line.startswith("a=rtpmap:") and payload_type in opus and payload_type not in stated:
            out.append(f"a=fmtp:{payload_type} useinbandfec=1")
    return "\r\n".join(out) + "\r\n"


def _payload_type(line: str) -> str:
    """ "a=rtpmap:111 opus/48000/2" or "a=fmtp:111 ..." -> "111"."""
    return line.split(":", 1)[1].split(" ", 1)[0]


def _is_opus(rtpmap: str) -> bool:
    fields = rtpmap.split()
    return len(fields) > 1 and fields[1].lower().startswith("opus/48000")


# A browser offers a host, a server-reflexive and a relay candidate per interface and transport:
# a dozen at most. Past this many in one offer, the rest are dropped (PODIUM_MAX_REMOTE_CANDIDATES).
MAX_REMOTE_CANDIDATES = 32
# Addresses no speaker has: "this network", and the IPv4 limited broadcast.
_NOWHERE = (ipaddress.IPv4Network("0.0.0.0/8"), ipaddress.IPv4Network("255.255.255.255/32"))


def is_speaker_address(address: str, allow_loopback: bool) -> bool:
    """Whether the stage may send ICE checks to a remote candidate's address: a stranger's offer could
    name anyone's (a reflection: the stage knocking on a third party's ports).

    Refused: unspecified, 0.0.0.0/8, multicast, broadcast, reserved, link-local, loopback unless
    PODIUM_ICE_LOOPBACK allows it, and DNS names (the stage would look up whatever the offer says;
    mDNS `….local` names are kept). An IPv6 address carrying an IPv4 one is judged by that. Kept:
    public and private addresses (a speaker on the stage's LAN or VPN), and the documentation ranges
    that tests and benchmarks give their network namespaces."""
    if address.lower().endswith(".local"):
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.is_loopback:
        return allow_loopback
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in LOCAL_NAT64:
            return False
        inner = embedded_ipv4(ip)
        if inner:  # judged by the IPv4 address alone (most of these ranges count as reserved)
            return all(is_speaker_address(str(v4), allow_loopback) for v4 in inner)
    elif any(ip in network for network in _NOWHERE):
        return False
    return not (ip.is_unspecified or ip.is_multicast or ip.is_reserved or ip.is_link_local)


def filter_remote_candidates(text: str, allow_loopback: bool, max_candidates: int = MAX_REMOTE_CANDIDATES) -> str:
    """The offer with only the ICE candidates the stage may send checks to (`is_speaker_address`),
    and at most `max_candidates` of them (the first ones, in the offer's order)."""
    kept: list[str] = []
    count = 0
    for line in text.split("\n"):
        if line.startswith("a=candidate:"):
            fields = line.split()
            port = fields[5] if len(fields) > 5 else ""
            if (
                count >= max_candidates
                or len(fields) < 8
                or not port.isdigit()
                or not 0 < int(port) < 65536
                or not is_speaker_address(fields[4], allow_loopback)
            ):
                continue
            count += 1
        kept.append(line)
    return "\n".join(kept)


def keep_loopback_candidates(text: str) -> str:
    """Drop every ICE candidate whose address is not loopback (for loopback-only mode)."""
    return "\n".join(line for line in text.split("\n") if not line.startswith("a=candidate:") or _is_loopback(line))


def _is_loopback(candidate: str) -> bool:
    fields = candidate.split()
    try:
        return len(fields) >= 5 and ipaddress.ip_address(fields[4]).is_loopback
    except ValueError:
        return False


def _trim_bundle(line: str, mids: set[str | None]) -> str:
    if not line.startswith("a=group:BUNDLE"):
        return line
    kept = [m for m in line.split()[1:] if m in mids]
    return "a=group:BUNDLE " + " ".join(kept)


def _join(session: list[str], media: list[str]) -> str:
    return "\r\n".join(session + media) + "\r\n"
