#!/usr/bin/env python3
"""Renders a terminal capture with colours (`tmux capture-pane -e -p`) to a
PNG, one monospace cell per character, for the README's picture of
`xgroup top`. Needs Pillow (pip install pillow) and DejaVu Sans Mono
(Debian's fonts-dejavu-core).

    python3 docs/ansi2png.py capture.ansi docs/top.png
"""
import re
import sys

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
SIZE = 15
FG, BG = (220, 220, 220), (24, 24, 28)
# xterm's 16 colours, then the 6x6x6 cube and the greys.
BASE = [(0, 0, 0), (205, 49, 49), (13, 188, 121), (229, 229, 16), (36, 114, 200),
        (188, 63, 188), (17, 168, 205), (229, 229, 229), (102, 102, 102), (241, 76, 76),
        (35, 209, 139), (245, 245, 67), (59, 142, 234), (214, 112, 214), (41, 184, 219),
        (255, 255, 255)]


def colour(n):
    if n < 16:
        return BASE[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    g = 8 + (n - 232) * 10
    return (g, g, g)


def parse(text):
    """Yields rows of (char, fg, bg, bold)."""
    rows = []
    fg, bg, bold = None, None, False
    for line in text.rstrip("\n").split("\n"):
        row = []
        for part in re.split(r"(\x1b\[[0-9;]*m)", line):
            if part.startswith("\x1b["):
                codes = [int(c) if c else 0 for c in part[2:-1].split(";")]
                i = 0
                while i < len(codes):
                    c = codes[i]
                    if c == 0:
                        fg, bg, bold = None, None, False
                    elif c == 1:
                        bold = True
                    elif c == 22:
                        bold = False
                    elif 30 <= c <= 37:
                        fg = BASE[c - 30]
                    elif 90 <= c <= 97:
                        fg = BASE[c - 90 + 8]
                    elif 40 <= c <= 47:
                        bg = BASE[c - 40]
                    elif 100 <= c <= 107:
                        bg = BASE[c - 100 + 8]
                    elif c == 39:
                        fg = None
                    elif c == 49:
                        bg = None
                    elif c in (38, 48) and i + 2 < len(codes) and codes[i + 1] == 5:
                        if c == 38:
                            fg = colour(codes[i + 2])
                        else:
                            bg = colour(codes[i + 2])
                        i += 2
                    elif c in (38, 48) and i + 4 < len(codes) and codes[i + 1] == 2:
                        rgb = tuple(codes[i + 2:i + 5])
                        if c == 38:
                            fg = rgb
                        else:
                            bg = rgb
                        i += 4
                    i += 1
            else:
                for ch in part:
                    row.append((ch, fg, bg, bold))
        rows.append(row)
    return rows


def main(src, dst):
    with open(src, encoding="utf-8") as f:
        rows = parse(f.read())
    regular = ImageFont.truetype(FONT, SIZE)
    bold_font = ImageFont.truetype(BOLD, SIZE)
    left, top, right, bottom = regular.getbbox("M")
    cw = round(regular.getlength("M"))
    ch = SIZE + 4
    cols = max(len(r) for r in rows)
    pad = 12
    img = Image.new("RGB", (cols * cw + 2 * pad, len(rows) * ch + 2 * pad), BG)
    draw = ImageDraw.Draw(img)
    for y, row in enumerate(rows):
        for x, (c, fg, bg, bold) in enumerate(row):
            x0, y0 = pad + x * cw, pad + y * ch
            if bg is not None:
                draw.rectangle([x0, y0, x0 + cw - 1, y0 + ch - 1], fill=bg)
            if c == " ":
                continue
            # Block elements fill their cell exactly (the font's may not).
            if "\u2581" <= c <= "\u2588":
                eighths = ord(c) - 0x2580
                h = ch * eighths // 8
                draw.rectangle([x0, y0 + ch - h, x0 + cw - 1, y0 + ch - 1], fill=fg or FG)
                continue
            # Box drawing: lines through the middle of the cell, joined.
            mid_x, mid_y = x0 + cw // 2, y0 + ch // 2
            arms = {"─": "lr", "│": "ud", "┌": "rd", "┐": "ld", "└": "ru", "┘": "lu",
                    "├": "udr", "┤": "udl", "┬": "lrd", "┴": "lru", "┼": "udlr"}.get(c)
            if arms is not None:
                colour_ = fg or FG
                if "l" in arms:
                    draw.line([x0, mid_y, mid_x, mid_y], fill=colour_)
                if "r" in arms:
                    draw.line([mid_x, mid_y, x0 + cw, mid_y], fill=colour_)
                if "u" in arms:
                    draw.line([mid_x, y0, mid_x, mid_y], fill=colour_)
                if "d" in arms:
                    draw.line([mid_x, mid_y, mid_x, y0 + ch], fill=colour_)
                continue
            draw.text((x0, y0 + 2), c, font=bold_font if bold else regular, fill=fg or FG)
    img.save(dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
