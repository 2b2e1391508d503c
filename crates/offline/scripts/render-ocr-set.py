#!/usr/bin/env python3
"""Render chat lines into pictures the way players post them, to measure OCR (`make ocr-accuracy`).

Three styles per line: a dark-theme chat screenshot (coloured name, small grey-white text), a
light-theme one, and a meme caption (bold white with a black outline over a noisy photo-like
background). The lines were written for this measurement and are in no training or sample file.
Writes <out>/<n>-<style>.png and <out>/expected.tsv (file, style, kind, text).

Needs Pillow (pinned in the Makefile) and Debian's fonts-dejavu-core.
"""
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

ABUSE = [
    "nobody in this lobby wants you, just quit already",
    "you play like a brain dead monkey",
    "i know which school you go to, see you tomorrow",
    "go jump off a bridge you useless bot",
    "report this clown, he is a total waste of oxygen",
    "ur so trash kid, uninstall before i find ur address",
    "shut your mouth you pathetic loser",
    "keep talking and i will make you bleed",
    "free 5000 gems, just log in at gemz-bonus dot net",
    "send me your password and i'll level your account",
    "women can't aim, go back to the kitchen",
    "you are the dumbest player i have ever seen",
    "i hope your whole family gets sick",
    "stfu noob nobody asked",
    "die in a fire you worthless idiot",
    "everyone mass report this freak",
    "your mom should have kept you off the internet",
    "ill beat you senseless irl",
    "send pics or get kicked from the clan",
    "you should kill yourself honestly",
]
BENIGN = [
    "nice flank, that was clean",
    "rotate to B, they are stacking A",
    "anyone want to duo ranked later",
    "my internet is dying again lol",
    "that boss fight killed me five times",
    "gg, close match, rematch?",
    "can someone drop me a medkit",
    "the new map is actually beautiful",
    "brb dinner, save my spot",
    "we lost but that comeback was wild",
    "who has the spare key for the vault",
    "lag spike, sorry for the feed",
    "headshot from across the map, insane",
    "going to bed, good games all",
    "reminder: never share your password with anyone",
    "tank in front, healers stay back",
    "thanks for the carry, legend",
    "that sniper nest is brutal",
    "mute the music, i cant hear footsteps",
    "happy birthday Sam, have a great one",
]
NAMES = ["Vexa", "r0gue_7", "MossyPaws", "kaiju", "Nightjar", "tomtom99"]

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


def font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_DIR / name), size)


def chat(text: str, dark: bool, rng: random.Random) -> Image.Image:
    size = rng.choice([15, 16, 18, 20])
    f, fb = font("DejaVuSans.ttf", size), font("DejaVuSans-Bold.ttf", size)
    name = rng.choice(NAMES) + ":"
    bg = (24, 26, 33) if dark else (246, 246, 248)
    fg = (225, 225, 230) if dark else (30, 30, 35)
    nc = rng.choice([(120, 190, 255), (255, 170, 90), (140, 220, 140)])
    width = int(fb.getlength(name) + f.getlength(text)) + 60
    img = Image.new("RGB", (width, size * 3), bg)
    d = ImageDraw.Draw(img)
    d.text((20, size), name, font=fb, fill=nc)
    d.text((20 + fb.getlength(name) + 8, size), text, font=f, fill=fg)
    return img


def meme(text: str, rng: random.Random) -> Image.Image:
    w, h = 640, 420
    img = Image.new("RGB", (w, h))
    px = img.load()
    base = [rng.randrange(40, 200) for _ in range(3)]
    for y in range(h):
        for x in range(w):
            n = rng.randrange(-40, 40)
            px[x, y] = tuple(max(0, min(255, c + n + (x + y) // 12)) for c in base)
    img = img.filter(ImageFilter.GaussianBlur(2))
    d = ImageDraw.Draw(img)
    f = font("DejaVuSans-Bold.ttf", 34)
    words, lines, cur = text.upper().split(), [], ""
    for word in words:
        trial = (cur + " " + word).strip()
        if f.getlength(trial) > w - 40 and cur:
            lines.append(cur)
            cur = word
        else:
            cur = trial
    lines.append(cur)
    y = h - 30 - 44 * len(lines)
    for line in lines:
        x = (w - f.getlength(line)) / 2
        d.text((x, y), line, font=f, fill="white", stroke_width=3, stroke_fill="black")
        y += 44
    return img


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "target/ocr-set")
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    rows = []
    for n, (kind, text) in enumerate([("abuse", t) for t in ABUSE] + [("benign", t) for t in BENIGN]):
        for style, img in (
            ("chat-dark", chat(text, True, rng)),
            ("chat-light", chat(text, False, rng)),
            ("meme", meme(text, rng)),
        ):
            name = f"{n:03}-{style}.png"
            img.save(out / name)
            rows.append(f"{name}\t{style}\t{kind}\t{text}")
    (out / "expected.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"{len(rows)} pictures in {out}")


if __name__ == "__main__":
    main()
