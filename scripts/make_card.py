"""Draw the link-preview card (src/podium/web/static/card.png, 1200x630) once, with Chromium.

The card says nothing in any language and nothing of a space's state (one image serves every
page, live or replay): the logo, the name and a waveform, in the pages' colours. Run
`python scripts/make_card.py` after changing it; it needs Playwright for Python and Chromium
(PODIUM_CHROMIUM, else /usr/bin/chromium), and ffmpeg to reduce the picture to a 256-colour PNG
of a few tens of kilobytes.
"""

from __future__ import annotations

import math
import os
import subprocess
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "src" / "podium" / "web" / "static"
WIDTH, HEIGHT = 1200, 630


def waveform(bars: int = 48) -> str:
    # A speech-like envelope: two phrases, deterministic, so the card is the same on every run.
    heights = []
    for i in range(bars):
        x = i / (bars - 1)
        envelope = math.sin(math.pi * x) ** 0.6
        ripple = 0.55 + 0.45 * abs(math.sin(i * 1.7) * math.cos(i * 0.45))
        heights.append(max(10, round(150 * envelope * ripple)))
    return "".join(f'<span style="height:{h}px"></span>' for h in heights)


def page() -> str:
    icon = (STATIC / "icon.svg").read_text(encoding="utf-8")
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
html, body {{ margin: 0; width: {WIDTH}px; height: {HEIGHT}px; overflow: hidden; }}
body {{ background: radial-gradient(1100px 620px at 18% -12%, #2b3470 0%, #0f1222 62%);
  font-family: "DejaVu Sans", sans-serif; color: #eef0fb; position: relative; }}
.brand {{ position: absolute; left: 96px; top: 110px; display: flex; align-items: center; gap: 36px; }}
.brand svg {{ width: 168px; height: 168px; }}
.name {{ font-size: 132px; font-weight: 700; letter-spacing: 2px; }}
.wave {{ position: absolute; left: 96px; right: 96px; bottom: 92px; height: 170px; display: flex;
  align-items: center; justify-content: space-between; }}
.wave span {{ width: 12px; border-radius: 6px; background: linear-gradient(#ffb36b, #ff5a5f); }}
</style></head><body>
<div class="brand">{icon}<span class="name">Podium</span></div>
<div class="wave">{waveform()}</div>
</body></html>"""


def main() -> None:
    target = STATIC / "card.png"
    with tempfile.TemporaryDirectory() as folder:
        shot = Path(folder) / "card.png"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=os.environ.get("PODIUM_CHROMIUM", "/usr/bin/chromium"))
            tab = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            tab.set_content(page())
            tab.screenshot(path=str(shot))
            browser.close()
        # 256 colours are plenty for a gradient and flat shapes, and keep the file small.
        subprocess.run(
            [
                "ffmpeg",
                "-loglevel",
                "error",
                "-y",
                "-i",
                str(shot),
                "-vf",
                "split[a][b];[a]palettegen=max_colors=256[p];[b][p]paletteuse=dither=bayer:bayer_scale=3",
                str(target),
            ],
            check=True,
        )
    print(f"{target.relative_to(ROOT)}: {target.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
