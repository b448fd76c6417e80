"""The instance's podcast feed (RSS 2.0, Podcasting 2.0): scheduled and live spaces are
`podcast:liveItem`s, so apps that follow live items can announce and play them; every recorded
space that has ended is an `item` whose enclosure is its `.m4a`."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import datetime
from email.utils import format_datetime

from podium import urls
from podium.backends.interfaces import MediaStore
from podium.domain.space import ANNOUNCED_LENGTH, Space, SpaceState
from podium.ids import SpaceId
from podium.recording import DOWNLOAD_NAME
from podium.web.urls import url_path

PODCAST_NS = "https://podcastindex.org/namespace/1.0"
ITUNES_NS = "http://www.itunes.com/dtds/podcast-1.0.dtd"
ATOM_NS = "http://www.w3.org/2005/Atom"

ET.register_namespace("podcast", PODCAST_NS)
ET.register_namespace("itunes", ITUNES_NS)
ET.register_namespace("atom", ATOM_NS)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _text(parent: ET.Element, tag: str, text: str, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    element.text = text
    return element


def _live_item(channel: ET.Element, base: str, space: Space) -> None:
    start = space.started_at or space.starts_at or space.created_at
    if space.state is SpaceState.ENDED:
        status, end = "ended", space.ended_at or start
    else:
        status = "live" if space.state is SpaceState.LIVE else "pending"
        end = start + ANNOUNCED_LENGTH
    page = base + urls.fill(urls.LISTEN_PAGE, space_id=space.id)
    hls = base + urls.fill(urls.HLS, space_id=space.id) + "index.m3u8"
    item = ET.SubElement(
        channel, f"{{{PODCAST_NS}}}liveItem", {"status": status, "start": _iso(start), "end": _iso(end)}
    )
    _text(item, "title", space.title)
    _text(item, "guid", f"{space.id}-live", isPermaLink="false")
    _text(item, "link", page)
    _text(item, "description", f"Live audio on Podium: {space.title}")
    ET.SubElement(item, "enclosure", {"url": hls, "type": "application/vnd.apple.mpegurl", "length": "0"})
    _text(item, f"{{{PODCAST_NS}}}contentLink", "Listen in the browser", href=page)


def _replay_item(
    channel: ET.Element, media: MediaStore, base: str, space: Space, duration_s: float, language: str | None
) -> None:
    item = ET.SubElement(channel, "item")
    _text(item, "title", space.title)
    _text(item, "guid", space.id, isPermaLink="false")
    _text(item, "link", base + urls.fill(urls.LISTEN_PAGE, space_id=space.id))
    _text(item, "description", f"The recording of the live space “{space.title}”.")
    _text(item, "pubDate", format_datetime(space.ended_at or space.created_at))
    # The file's size from the local disk. A store without local files (S3) gives 0, the RSS advice for
    # a size that cannot be determined: reading every listed recording whole (tens of MB each) only to
    # count its bytes would make one feed request cost gigabytes.
    path = media.local_path(space.id, DOWNLOAD_NAME)
    size = str(path.stat().st_size if path is not None else 0)
    ET.SubElement(
        item,
        "enclosure",
        {"url": base + urls.fill(urls.DOWNLOAD, space_id=space.id), "type": "audio/mp4", "length": size},
    )
    _text(item, f"{{{ITUNES_NS}}}duration", str(round(duration_s)))
    if language is not None:
        transcript = base + url_path("transcriptVtt", space_id=space.id)
        ET.SubElement(
            item, f"{{{PODCAST_NS}}}transcript", {"url": transcript, "type": "text/vtt", "language": language}
        )


async def podcast_feed(
    media: MediaStore, spaces: list[Space], base: str, transcripts: Mapping[SpaceId, str] | None = None
) -> bytes:
    """`base`: the instance's public address (feeds need absolute links); `transcripts`: the
    language of each space that has a transcript (its episode names the WebVTT file)."""
    rss = ET.Element("rss", {"version": "2.0"})
    channel = ET.SubElement(rss, "channel")
    _text(channel, "title", f"Podium at {base.split('://', 1)[-1]}")
    _text(channel, "link", base + url_path("page.home"))
    _text(channel, "description", "Live audio conversations and their recordings.")
    _text(channel, "language", "en")
    _text(channel, "generator", "Podium")
    ET.SubElement(
        channel, f"{{{ATOM_NS}}}link", {"href": base + url_path("feed"), "rel": "self", "type": "application/rss+xml"}
    )
    # podcast:guid: a UUIDv5 of the feed's address without its scheme, as the namespace asks.
    feed_guid = uuid.uuid5(uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6"), f"{base.split('://', 1)[-1]}/feed.xml")
    _text(channel, f"{{{PODCAST_NS}}}guid", str(feed_guid))
    _text(channel, f"{{{PODCAST_NS}}}medium", "podcast")
    _text(channel, f"{{{ITUNES_NS}}}author", "Podium")
    for space in spaces:
        _live_item(channel, base, space)
    for space in spaces:
        if space.state is SpaceState.ENDED and space.record:
            records = await media.records(space.id)
            if records:
                language = (transcripts or {}).get(space.id)
                _replay_item(channel, media, base, space, sum(r.duration_s for r in records), language)
    ET.indent(rss)
    body: bytes = ET.tostring(rss, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body
