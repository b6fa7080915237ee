"""Drawn product photos for the demo catalog.

Every leaf class has a painter that draws a recognisable silhouette (a shirt, headphones, a
frying pan...) in the product's colour. :class:`Style` varies colour, background, size, position,
rotation, mirroring and fabric pattern per product, so images of one class differ from each other
(rarely perceptual-hash neighbours by accident) while a small CNN can still learn the class from the shape.
Drawing happens at twice the output size and is box-downsampled, which anti-aliases the edges.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from ecom_kfp.demo.taxonomy import COLOURS

RGB = tuple[int, int, int]
Point = tuple[float, float]
Box = tuple[float, float, float, float]

PATTERNS = ("solid", "striped", "checked", "dotted")
SUPERSAMPLE = 2
_INK: RGB = (24, 24, 26)
_SCREEN: RGB = (18, 26, 44)


def shade(colour: RGB, factor: float) -> RGB:
    """Darken (``factor`` < 1) or lighten (> 1, towards white) a colour."""
    if factor <= 1:
        return tuple(int(c * factor) for c in colour)  # type: ignore[return-value]
    return tuple(int(c + (255 - c) * (factor - 1)) for c in colour)  # type: ignore[return-value]


@dataclass(frozen=True)
class Style:
    """How one product's image varies from the other images of its class.

    Attributes:
        colour: Main product colour.
        accent: Secondary colour (soles, straps, screens' content, caps).
        background: Start and end colours of the background (equal for a plain one): of the
            gradient, or wall and floor when ``horizon`` is set.
        center: Object centre as a fraction of the image side.
        scale: Object size as a fraction of the image side.
        rotation: Degrees, counter-clockwise.
        mirror: Flip horizontally.
        stretch: Width over height of the object's box (product variants are wider or slimmer).
        gradient_angle: Direction of the background gradient, degrees (0 = top to bottom).
        horizon: Height of the wall/floor edge as a fraction of the side, for room-like shots.
        badge: A round sticker ("sale", a logo) as (x, y, radius) fractions of the side and colour.
        pattern: Fabric pattern of apparel (one of :data:`PATTERNS`).
        pattern_colour: Colour of stripes, checks or dots.
    """

    colour: RGB
    accent: RGB
    background: tuple[RGB, RGB]
    center: Point
    scale: float
    rotation: float
    mirror: bool
    stretch: float = 1.0
    gradient_angle: int = 0
    horizon: float | None = None
    badge: tuple[float, float, float, RGB] | None = None
    pattern: str = "solid"
    pattern_colour: RGB = (255, 255, 255)


def _jitter(rng: random.Random, colour: RGB, amount: int) -> RGB:
    return tuple(min(255, max(0, c + rng.randint(-amount, amount))) for c in colour)  # type: ignore[return-value]


def _random_background(rng: random.Random) -> tuple[str, RGB, RGB]:
    kind = rng.choices(("white", "grey", "tint", "gradient", "floor"), weights=(3, 2, 2, 3, 3))[0]
    if kind == "white":
        return kind, (255, 255, 255), (255, 255, 255)
    if kind == "grey":
        grey = rng.randint(200, 242)
        return kind, (grey, grey, grey), (grey, grey, grey)
    first = shade(_jitter(rng, COLOURS[rng.choice(list(COLOURS))], 20), rng.uniform(1.5, 1.85))
    return kind, first, first if kind == "tint" else shade(first, rng.uniform(0.65, 0.88))


def random_style(rng: random.Random, colour_name: str, patterned: bool) -> Style:
    """Draw one product's :class:`Style` from ``rng``.

    Args:
        rng: The product's random generator (so a product always gets the same style).
        colour_name: Key of :data:`COLOURS`; the colour named in the product title.
        patterned: Whether the class is a fabric that can be striped, checked or dotted.
    """
    colour = _jitter(rng, COLOURS[colour_name], 14)
    accent = _jitter(rng, COLOURS[rng.choice([n for n in COLOURS if n != colour_name])], 10)
    kind, first, second = _random_background(rng)
    pattern = rng.choices(PATTERNS, weights=(5, 2, 2, 1))[0] if patterned else "solid"
    badge = None
    if rng.random() < 0.5:
        badge = (rng.choice((0.14, 0.86)), rng.choice((0.14, 0.86)), rng.uniform(0.07, 0.15),
                 _jitter(rng, COLOURS[rng.choice(("Red", "Orange", "Yellow", "Green", "Blue", "Black"))], 10))
    return Style(
        colour=colour,
        accent=accent,
        background=(first, second),
        center=(0.5 + rng.uniform(-0.14, 0.14), 0.5 + rng.uniform(-0.14, 0.14)),
        scale=rng.uniform(0.48, 0.86),
        stretch=rng.uniform(0.8, 1.2),
        rotation=rng.uniform(-15, 15),
        mirror=rng.random() < 0.5,
        gradient_angle=rng.choice(range(0, 360, 45)) if kind == "gradient" else 0,
        horizon=rng.uniform(0.55, 0.85) if kind == "floor" else None,
        badge=badge,
        pattern=pattern,
        pattern_colour=shade(colour, 0.55) if sum(colour) > 300 else shade(colour, 1.6),
    )


class Pen:
    """Draws in object coordinates: (0, 0) top-left to (1, 1) bottom-right of the product's box."""

    def __init__(self, image: Image.Image, style: Style) -> None:
        self.image = image
        self.draw = ImageDraw.Draw(image)
        self.style = style
        self._side = image.width * style.scale
        self._width = self._side * style.stretch
        self._x0 = image.width * style.center[0] - self._width / 2
        self._y0 = image.height * style.center[1] - self._side / 2

    def xy(self, u: float, v: float) -> Point:
        return (self._x0 + u * self._width, self._y0 + v * self._side)

    def points(self, pts: Sequence[Point]) -> list[Point]:
        return [self.xy(u, v) for u, v in pts]

    def box(self, box: Box) -> list[float]:
        (x0, y0), (x1, y1) = self.xy(box[0], box[1]), self.xy(box[2], box[3])
        return [x0, y0, x1, y1]

    def width(self, fraction: float) -> int:
        return max(1, round(fraction * self._side))

    def polygon(self, pts: Sequence[Point], fill: RGB, outline: RGB | None = None, width: float = 0.012) -> None:
        self.draw.polygon(self.points(pts), fill=fill, outline=outline, width=self.width(width) if outline else 0)

    def ellipse(self, box: Box, fill: RGB | None, outline: RGB | None = None, width: float = 0.012) -> None:
        self.draw.ellipse(self.box(box), fill=fill, outline=outline, width=self.width(width))

    def rect(self, box: Box, fill: RGB | None, outline: RGB | None = None, radius: float = 0.0,
             width: float = 0.012) -> None:
        self.draw.rounded_rectangle(self.box(box), radius=self.width(radius) if radius else 0, fill=fill,
                                    outline=outline, width=self.width(width))

    def line(self, pts: Sequence[Point], fill: RGB, width: float = 0.015) -> None:
        self.draw.line(self.points(pts), fill=fill, width=self.width(width), joint="curve")

    def arc(self, box: Box, start: float, end: float, fill: RGB, width: float = 0.03) -> None:
        self.draw.arc(self.box(box), start, end, fill=fill, width=self.width(width))

    def fabric(self, pts: Sequence[Point]) -> None:
        """A garment panel in the style's colour and pattern, outlined."""
        style = self.style
        if style.pattern == "solid":
            self.polygon(pts, style.colour, shade(style.colour, 0.6))
            return
        cloth = Image.new("RGB", self.image.size, style.colour)
        draw = ImageDraw.Draw(cloth)
        step = max(4, round(self._side / 9))
        side = self.image.width
        if style.pattern in ("striped", "checked"):
            for x in range(0, side, step):
                draw.rectangle([x, 0, x + step // 3, side], fill=style.pattern_colour)
        if style.pattern == "checked":
            for y in range(0, side, step):
                draw.rectangle([0, y, side, y + step // 3], fill=style.pattern_colour)
        if style.pattern == "dotted":
            r = max(1, step // 5)
            for y in range(step // 2, side, step):
                for x in range(step // 2 if (y // step) % 2 else 0, side, step):
                    draw.ellipse([x - r, y - r, x + r, y + r], fill=style.pattern_colour)
        mask = Image.new("L", self.image.size, 0)
        ImageDraw.Draw(mask).polygon(self.points(pts), fill=255)
        self.image.paste(cloth, mask=mask)
        self.polygon(pts, None, shade(style.colour, 0.6))  # type: ignore[arg-type]


def _mirror_x(pts: Sequence[Point]) -> list[Point]:
    return [(1 - u, v) for u, v in pts]


# --- apparel -----------------------------------------------------------------------------------

def _shirt(p: Pen) -> None:
    c = p.style.colour
    p.fabric([(0.36, 0.06), (0.5, 0.16), (0.64, 0.06), (0.8, 0.1), (0.97, 0.78), (0.86, 0.82), (0.76, 0.4),
              (0.76, 0.96), (0.24, 0.96), (0.24, 0.4), (0.14, 0.82), (0.03, 0.78), (0.2, 0.1)])
    collar = [(0.36, 0.05), (0.5, 0.16), (0.41, 0.25)]
    p.polygon(collar, shade(c, 1.35), shade(c, 0.5))
    p.polygon(_mirror_x(collar), shade(c, 1.35), shade(c, 0.5))
    p.line([(0.5, 0.16), (0.5, 0.96)], shade(c, 0.55), 0.012)
    for v in (0.3, 0.45, 0.6, 0.75, 0.9):
        p.ellipse((0.515, v - 0.015, 0.545, v + 0.015), shade(c, 1.5))
    p.rect((0.58, 0.3, 0.7, 0.42), None, shade(c, 0.55), width=0.01)


def _tshirt(p: Pen) -> None:
    c = p.style.colour
    p.fabric([(0.36, 0.08), (0.64, 0.08), (0.82, 0.12), (0.98, 0.34), (0.86, 0.44), (0.76, 0.36),
              (0.76, 0.95), (0.24, 0.95), (0.24, 0.36), (0.14, 0.44), (0.02, 0.34), (0.18, 0.12)])
    p.arc((0.36, -0.05, 0.64, 0.2), 0, 180, shade(c, 0.55), 0.035)


def _sweater(p: Pen) -> None:
    c = p.style.colour
    p.fabric([(0.34, 0.06), (0.66, 0.06), (0.84, 0.12), (0.97, 0.86), (0.85, 0.88), (0.76, 0.42),
              (0.76, 0.92), (0.24, 0.92), (0.24, 0.42), (0.15, 0.88), (0.03, 0.86), (0.16, 0.12)])
    rib = shade(c, 0.7)
    p.rect((0.24, 0.86, 0.76, 0.97), rib)
    for u in [0.27 + i * 0.04 for i in range(13)]:
        p.line([(u, 0.87), (u, 0.96)], shade(c, 0.5), 0.008)
    p.polygon([(0.03, 0.86), (0.15, 0.88), (0.14, 0.96), (0.02, 0.94)], rib)
    p.polygon(_mirror_x([(0.03, 0.86), (0.15, 0.88), (0.14, 0.96), (0.02, 0.94)]), rib)
    p.arc((0.34, -0.06, 0.66, 0.2), 0, 180, rib, 0.06)


def _jeans(p: Pen) -> None:
    c = p.style.colour
    p.polygon([(0.22, 0.12), (0.78, 0.12), (0.86, 0.97), (0.57, 0.97), (0.5, 0.36), (0.43, 0.97), (0.14, 0.97)],
              c, shade(c, 0.55))
    p.rect((0.21, 0.03, 0.79, 0.13), shade(c, 0.75), shade(c, 0.5))
    stitch = (206, 150, 60)
    p.line([(0.5, 0.13), (0.5, 0.32)], stitch, 0.008)
    p.arc((0.18, 0.02, 0.42, 0.3), 0, 90, stitch, 0.01)
    p.arc((0.58, 0.02, 0.82, 0.3), 90, 180, stitch, 0.01)
    for u in (0.3, 0.5, 0.7):
        p.rect((u - 0.015, 0.02, u + 0.015, 0.14), shade(c, 0.6))


def _shorts(p: Pen) -> None:
    c = p.style.colour
    p.fabric([(0.2, 0.24), (0.8, 0.24), (0.92, 0.76), (0.56, 0.8), (0.5, 0.5), (0.44, 0.8), (0.08, 0.76)])
    p.rect((0.19, 0.16, 0.81, 0.25), shade(c, 0.7), shade(c, 0.5))
    p.line([(0.47, 0.25), (0.43, 0.4)], (245, 245, 245), 0.012)
    p.line([(0.53, 0.25), (0.57, 0.4)], (245, 245, 245), 0.012)


def _dress(p: Pen) -> None:
    c = p.style.colour
    p.line([(0.39, 0.12), (0.36, 0.0)], shade(c, 0.6), 0.02)
    p.line([(0.61, 0.12), (0.64, 0.0)], shade(c, 0.6), 0.02)
    p.fabric([(0.37, 0.1), (0.63, 0.1), (0.6, 0.4), (0.92, 0.98), (0.08, 0.98), (0.4, 0.4)])
    p.rect((0.39, 0.37, 0.61, 0.43), shade(c, 0.6))


# --- footwear ----------------------------------------------------------------------------------

def _sneaker(p: Pen) -> None:
    c, a = p.style.colour, p.style.accent
    p.polygon([(0.06, 0.72), (0.1, 0.5), (0.34, 0.42), (0.54, 0.28), (0.7, 0.26), (0.76, 0.44), (0.95, 0.58),
               (0.96, 0.72)], c, shade(c, 0.55))
    p.rect((0.04, 0.7, 0.97, 0.84), (244, 244, 240), (150, 150, 150), radius=0.05)
    p.line([(0.06, 0.78), (0.96, 0.78)], (190, 190, 190), 0.01)
    for i in range(4):
        u = 0.46 + i * 0.06
        p.line([(u, 0.33 + i * 0.03), (u + 0.08, 0.4 + i * 0.03)], (245, 245, 245), 0.015)
    p.arc((0.2, 0.3, 0.8, 0.8), 110, 175, a, 0.04)


def _formal_shoe(p: Pen) -> None:
    c = p.style.colour
    p.polygon([(0.05, 0.74), (0.07, 0.54), (0.3, 0.5), (0.55, 0.45), (0.8, 0.54), (0.97, 0.68), (0.97, 0.74)],
              c, shade(c, 0.5))
    p.rect((0.03, 0.73, 0.97, 0.79), _INK)
    p.rect((0.04, 0.72, 0.2, 0.84), _INK)
    p.ellipse((0.55, 0.5, 0.82, 0.6), shade(c, 1.4))
    p.line([(0.3, 0.5), (0.42, 0.62), (0.3, 0.72)], shade(c, 0.5), 0.01)


def _flip_flop(p: Pen) -> None:
    c, a = p.style.colour, p.style.accent
    for u0 in (0.08, 0.54):
        p.ellipse((u0, 0.04, u0 + 0.38, 0.96), c, shade(c, 0.55))
        mid = u0 + 0.19
        p.line([(mid, 0.24), (u0 + 0.04, 0.56)], a, 0.04)
        p.line([(mid, 0.24), (u0 + 0.34, 0.56)], a, 0.04)
        p.ellipse((mid - 0.025, 0.21, mid + 0.025, 0.27), shade(a, 0.6))


# --- accessories -------------------------------------------------------------------------------

def _handbag(p: Pen) -> None:
    c = p.style.colour
    p.arc((0.28, 0.08, 0.72, 0.64), 180, 360, shade(c, 0.6), 0.05)
    p.polygon([(0.12, 0.38), (0.88, 0.38), (0.96, 0.94), (0.04, 0.94)], c, shade(c, 0.5))
    p.polygon([(0.12, 0.38), (0.88, 0.38), (0.84, 0.58), (0.16, 0.58)], shade(c, 0.82), shade(c, 0.5))
    p.rect((0.45, 0.54, 0.55, 0.64), COLOURS["Gold"], shade(COLOURS["Gold"], 0.6))


def _backpack(p: Pen) -> None:
    c = p.style.colour
    p.arc((0.4, 0.02, 0.6, 0.2), 180, 360, shade(c, 0.55), 0.035)
    p.rect((0.18, 0.1, 0.82, 0.97), c, shade(c, 0.5), radius=0.16)
    p.rect((0.28, 0.56, 0.72, 0.9), shade(c, 0.8), shade(c, 0.45), radius=0.07)
    p.arc((0.24, 0.14, 0.76, 0.6), 200, 340, shade(c, 0.45), 0.014)
    p.ellipse((0.47, 0.6, 0.53, 0.64), (220, 220, 220))


def _watch_straps(p: Pen, colour: RGB) -> None:
    p.rect((0.38, 0.0, 0.62, 0.32), colour, shade(colour, 0.55))
    p.rect((0.38, 0.68, 0.62, 1.0), colour, shade(colour, 0.55))


def _analog_watch(p: Pen) -> None:
    c = p.style.colour
    _watch_straps(p, c)
    p.ellipse((0.24, 0.24, 0.76, 0.76), COLOURS["Silver"], shade(COLOURS["Silver"], 0.5), 0.02)
    p.ellipse((0.29, 0.29, 0.71, 0.71), (246, 244, 236))
    for k in range(12):
        ang = math.tau * k / 12
        p.line([(0.5 + 0.17 * math.sin(ang), 0.5 - 0.17 * math.cos(ang)),
                (0.5 + 0.2 * math.sin(ang), 0.5 - 0.2 * math.cos(ang))], _INK, 0.01)
    p.line([(0.5, 0.5), (0.5, 0.34)], _INK, 0.02)
    p.line([(0.5, 0.5), (0.62, 0.55)], _INK, 0.02)


def _smart_watch(p: Pen) -> None:
    c, a = p.style.colour, p.style.accent
    _watch_straps(p, c)
    p.rect((0.26, 0.24, 0.74, 0.76), (40, 40, 44), (10, 10, 10), radius=0.1)
    p.rect((0.31, 0.29, 0.69, 0.71), (4, 4, 8), radius=0.07)
    p.arc((0.36, 0.34, 0.64, 0.66), 140, 400, shade(a, 1.3), 0.035)
    p.rect((0.44, 0.46, 0.56, 0.54), shade(a, 1.3))
    p.rect((0.74, 0.42, 0.78, 0.52), (60, 60, 64))


def _sunglasses(p: Pen) -> None:
    c = p.style.colour
    lens = shade(p.style.accent, 0.35)
    for box in ((0.04, 0.36, 0.45, 0.7), (0.55, 0.36, 0.96, 0.7)):
        p.ellipse(box, lens, c, 0.035)
    p.arc((0.4, 0.36, 0.6, 0.52), 200, 340, c, 0.03)
    p.line([(0.05, 0.44), (0.0, 0.34)], c, 0.025)
    p.line([(0.95, 0.44), (1.0, 0.34)], c, 0.025)
    p.ellipse((0.12, 0.42, 0.2, 0.5), shade(lens, 2.2))


def _cap(p: Pen) -> None:
    c = p.style.colour
    p.polygon([(0.46, 0.6), (1.0, 0.62), (0.98, 0.7), (0.46, 0.7)], shade(c, 0.7), shade(c, 0.45))
    p.draw.pieslice(p.box((0.1, 0.18, 0.74, 0.98)), 180, 360, fill=c, outline=shade(c, 0.5),
                    width=p.width(0.012))
    p.line([(0.42, 0.19), (0.3, 0.58)], shade(c, 0.6), 0.01)
    p.line([(0.42, 0.19), (0.56, 0.58)], shade(c, 0.6), 0.01)
    p.ellipse((0.39, 0.14, 0.45, 0.2), shade(c, 0.6))
    p.rect((0.32, 0.36, 0.5, 0.46), p.style.accent)


# --- electronics -------------------------------------------------------------------------------

def _headphones(p: Pen) -> None:
    c = p.style.colour
    p.arc((0.16, 0.04, 0.84, 0.8), 180, 360, c, 0.07)
    for u0 in (0.06, 0.7):
        p.rect((u0, 0.42, u0 + 0.24, 0.88), c, shade(c, 0.5), radius=0.08)
        p.rect((u0 + 0.04, 0.48, u0 + 0.2, 0.82), shade(c, 0.55), radius=0.06)


def _earbuds(p: Pen) -> None:
    c = p.style.colour
    for u0 in (0.14, 0.56):
        p.rect((u0 + 0.1, 0.42, u0 + 0.2, 0.9), c, shade(c, 0.6), radius=0.05)
        p.ellipse((u0, 0.18, u0 + 0.3, 0.48), c, shade(c, 0.6))
        p.ellipse((u0 + 0.08, 0.26, u0 + 0.2, 0.38), shade(c, 0.5))


def _speaker(p: Pen) -> None:
    c = p.style.colour
    p.rect((0.2, 0.04, 0.8, 0.96), c, shade(c, 0.5), radius=0.06)
    p.ellipse((0.28, 0.44, 0.72, 0.88), (30, 30, 34))
    p.ellipse((0.4, 0.56, 0.6, 0.76), shade(p.style.accent, 0.8))
    p.ellipse((0.41, 0.13, 0.59, 0.31), (30, 30, 34))


def _smartphone(p: Pen) -> None:
    c = p.style.colour
    p.rect((0.29, 0.02, 0.71, 0.98), c, shade(c, 0.5), radius=0.07)
    p.rect((0.32, 0.07, 0.68, 0.93), _SCREEN, radius=0.04)
    for row in range(3):
        for col in range(3):
            u, v = 0.36 + col * 0.11, 0.2 + row * 0.12
            p.rect((u, v, u + 0.07, v + 0.07), shade(p.style.accent, 1.2), radius=0.015)
    p.ellipse((0.48, 0.09, 0.52, 0.12), (0, 0, 0))


def _laptop(p: Pen) -> None:
    c = p.style.colour
    p.rect((0.15, 0.12, 0.85, 0.62), c, shade(c, 0.5), radius=0.02)
    p.rect((0.18, 0.15, 0.82, 0.59), _SCREEN)
    p.polygon([(0.2, 0.45), (0.4, 0.3), (0.55, 0.42), (0.82, 0.28), (0.82, 0.59), (0.18, 0.59)],
              shade(p.style.accent, 0.8))
    p.polygon([(0.15, 0.62), (0.85, 0.62), (0.99, 0.8), (0.01, 0.8)], shade(c, 1.15), shade(c, 0.5))
    for v in (0.66, 0.7, 0.74):
        p.line([(0.2 - (v - 0.62) * 0.5, v), (0.8 + (v - 0.62) * 0.5, v)], shade(c, 0.6), 0.008)


def _monitor(p: Pen) -> None:
    c = p.style.colour
    p.rect((0.46, 0.62, 0.54, 0.86), shade(c, 0.8))
    p.rect((0.28, 0.84, 0.72, 0.9), c, shade(c, 0.5), radius=0.02)
    p.rect((0.03, 0.1, 0.97, 0.66), c, shade(c, 0.5), radius=0.015)
    p.rect((0.06, 0.13, 0.94, 0.63), _SCREEN)
    p.ellipse((0.55, 0.2, 0.75, 0.4), shade(p.style.accent, 1.2))


def _camera(p: Pen) -> None:
    c = p.style.colour
    p.rect((0.34, 0.16, 0.62, 0.34), c, shade(c, 0.5), radius=0.03)
    p.rect((0.06, 0.28, 0.94, 0.86), c, shade(c, 0.5), radius=0.06)
    p.ellipse((0.3, 0.34, 0.74, 0.82), (40, 40, 44), (10, 10, 10))
    p.ellipse((0.38, 0.42, 0.66, 0.7), (16, 20, 30), shade(p.style.accent, 0.9), 0.02)
    p.ellipse((0.46, 0.5, 0.54, 0.58), (120, 140, 190))
    p.rect((0.76, 0.34, 0.88, 0.42), (236, 236, 236))
    p.rect((0.14, 0.22, 0.24, 0.28), shade(c, 0.6))


def _television(p: Pen) -> None:
    c = p.style.colour
    p.polygon([(0.14, 0.74), (0.18, 0.74), (0.12, 0.84), (0.08, 0.84)], c)
    p.polygon(_mirror_x([(0.14, 0.74), (0.18, 0.74), (0.12, 0.84), (0.08, 0.84)]), c)
    p.rect((0.0, 0.2, 1.0, 0.76), c, shade(c, 0.5), radius=0.01)
    p.rect((0.02, 0.22, 0.98, 0.74), (120, 170, 220))
    p.polygon([(0.02, 0.6), (0.3, 0.42), (0.5, 0.55), (0.75, 0.38), (0.98, 0.52), (0.98, 0.74), (0.02, 0.74)],
              shade(p.style.accent, 0.7))
    p.ellipse((0.78, 0.26, 0.88, 0.36), (250, 220, 90))


# --- home & kitchen ----------------------------------------------------------------------------

def _frying_pan(p: Pen) -> None:
    c = p.style.colour
    p.polygon([(0.56, 0.47), (0.99, 0.44), (0.99, 0.54), (0.56, 0.55)], _INK)
    p.ellipse((0.02, 0.22, 0.6, 0.8), c, shade(c, 0.5), 0.02)
    p.ellipse((0.09, 0.29, 0.53, 0.73), (46, 46, 50))


def _saucepan(p: Pen) -> None:
    c = p.style.colour
    p.rect((0.76, 0.46, 1.0, 0.53), _INK, radius=0.02)
    p.rect((0.18, 0.36, 0.8, 0.86), c, shade(c, 0.5), radius=0.05)
    p.draw.chord(p.box((0.16, 0.22, 0.82, 0.5)), 180, 360, fill=COLOURS["Silver"], outline=(90, 90, 96))
    p.ellipse((0.45, 0.18, 0.55, 0.26), _INK)
    p.line([(0.18, 0.44), (0.8, 0.44)], shade(c, 0.6), 0.01)


def _mug(p: Pen) -> None:
    c = p.style.colour
    p.ellipse((0.56, 0.34, 0.9, 0.74), None, shade(c, 0.8), 0.07)
    p.rect((0.18, 0.2, 0.7, 0.92), c, shade(c, 0.55), radius=0.05)
    p.ellipse((0.18, 0.15, 0.7, 0.27), shade(c, 1.3), shade(c, 0.55))
    p.ellipse((0.23, 0.17, 0.65, 0.25), shade(c, 0.45))


def _bottle(p: Pen) -> None:
    c = p.style.colour
    p.rect((0.34, 0.2, 0.66, 0.99), c, shade(c, 0.55), radius=0.08)
    p.rect((0.4, 0.09, 0.6, 0.24), shade(c, 0.85), shade(c, 0.55))
    p.rect((0.38, 0.0, 0.62, 0.1), p.style.accent, shade(p.style.accent, 0.55), radius=0.02)
    p.rect((0.34, 0.52, 0.66, 0.6), shade(c, 1.4))
    p.line([(0.4, 0.3), (0.4, 0.9)], shade(c, 1.35), 0.02)


def _chair(p: Pen) -> None:
    c = p.style.colour
    leg = shade(c, 0.6)
    for u in (0.24, 0.76):
        p.line([(u, 0.58), (u, 1.0)], leg, 0.04)
    p.line([(0.32, 0.58), (0.34, 0.92)], shade(leg, 0.8), 0.03)
    p.line([(0.68, 0.58), (0.66, 0.92)], shade(leg, 0.8), 0.03)
    p.rect((0.24, 0.0, 0.76, 0.44), c, shade(c, 0.55), radius=0.05)
    p.polygon([(0.18, 0.46), (0.82, 0.46), (0.86, 0.6), (0.14, 0.6)], shade(c, 0.85), shade(c, 0.55))


def _table(p: Pen) -> None:
    c = p.style.colour
    for u in (0.06, 0.86):
        p.rect((u, 0.36, u + 0.08, 0.96), shade(c, 0.7))
    p.rect((0.1, 0.7, 0.9, 0.75), shade(c, 0.8))
    p.rect((0.0, 0.3, 1.0, 0.4), c, shade(c, 0.55))


def _lamp(p: Pen) -> None:
    c, a = p.style.colour, p.style.accent
    p.rect((0.46, 0.42, 0.54, 0.86), a, shade(a, 0.6))
    p.ellipse((0.26, 0.82, 0.74, 0.96), a, shade(a, 0.6))
    p.polygon([(0.3, 0.04), (0.7, 0.04), (0.88, 0.46), (0.12, 0.46)], c, shade(c, 0.6))


def _wall_clock(p: Pen) -> None:
    c = p.style.colour
    p.ellipse((0.04, 0.04, 0.96, 0.96), c, shade(c, 0.5))
    p.ellipse((0.12, 0.12, 0.88, 0.88), (250, 248, 240))
    for k in range(12):
        ang = math.tau * k / 12
        inner = 0.3 if k % 3 else 0.26
        p.line([(0.5 + inner * math.sin(ang), 0.5 - inner * math.cos(ang)),
                (0.5 + 0.35 * math.sin(ang), 0.5 - 0.35 * math.cos(ang))], _INK, 0.02 if k % 3 else 0.035)
    p.line([(0.5, 0.5), (0.5, 0.2)], _INK, 0.03)
    p.line([(0.5, 0.5), (0.7, 0.6)], _INK, 0.04)
    p.line([(0.5, 0.55), (0.34, 0.3)], (200, 30, 30), 0.012)


# --- sports ------------------------------------------------------------------------------------

def _pentagon(cx: float, cy: float, r: float, turn: float) -> list[Point]:
    return [(cx + r * math.sin(turn + math.tau * k / 5), cy - r * math.cos(turn + math.tau * k / 5))
            for k in range(5)]


def _football(p: Pen) -> None:
    c = p.style.colour
    p.ellipse((0.04, 0.04, 0.96, 0.96), c, shade(c, 0.5), 0.015)
    patch = _INK if sum(c) > 300 else (245, 245, 245)
    p.polygon(_pentagon(0.5, 0.5, 0.14, 0), patch)
    for k in range(5):
        ang = math.tau * k / 5 + math.pi / 5
        cx, cy = 0.5 + 0.36 * math.sin(ang), 0.5 - 0.36 * math.cos(ang)
        p.polygon(_pentagon(cx, cy, 0.1, ang + math.pi), patch)
        p.line([(0.5 + 0.14 * math.sin(ang - math.pi / 5), 0.5 - 0.14 * math.cos(ang - math.pi / 5)),
                (0.5 + 0.3 * math.sin(ang - math.pi / 5), 0.5 - 0.3 * math.cos(ang - math.pi / 5))],
               shade(c, 0.5), 0.01)


def _basketball(p: Pen) -> None:
    c = p.style.colour
    p.ellipse((0.04, 0.04, 0.96, 0.96), c, _INK, 0.015)
    p.line([(0.5, 0.04), (0.5, 0.96)], _INK, 0.02)
    p.line([(0.04, 0.5), (0.96, 0.5)], _INK, 0.02)
    p.arc((-0.34, 0.14, 0.34, 0.86), 300, 60, _INK, 0.02)
    p.arc((0.66, 0.14, 1.34, 0.86), 120, 240, _INK, 0.02)


def _bicycle(p: Pen) -> None:
    c = p.style.colour
    for box in ((0.0, 0.46, 0.4, 0.86), (0.6, 0.46, 1.0, 0.86)):
        p.ellipse(box, None, _INK, 0.035)
    rear, front, bracket, seat, head = (0.2, 0.66), (0.8, 0.66), (0.46, 0.66), (0.38, 0.34), (0.72, 0.32)
    for a, b in ((rear, bracket), (bracket, seat), (seat, rear), (seat, head), (bracket, head), (head, front)):
        p.line([a, b], c, 0.03)
    p.line([(0.31, 0.3), (0.45, 0.3)], _INK, 0.035)
    p.line([(0.72, 0.32), (0.7, 0.24), (0.78, 0.22)], _INK, 0.025)


def _dumbbell(p: Pen) -> None:
    c = p.style.colour
    p.rect((0.2, 0.46, 0.8, 0.54), COLOURS["Silver"], (110, 110, 116))
    for u0, u1 in ((0.1, 0.24), (0.76, 0.9)):
        p.rect((u0, 0.24, u1, 0.76), c, shade(c, 0.5), radius=0.03)
    for u0, u1 in ((0.03, 0.1), (0.9, 0.97)):
        p.rect((u0, 0.32, u1, 0.68), shade(c, 0.75), shade(c, 0.5), radius=0.02)


#: Drawing key (``Leaf.shape``) -> painter.
PAINTERS: dict[str, Callable[[Pen], None]] = {
    "shirt": _shirt, "tshirt": _tshirt, "sweater": _sweater, "jeans": _jeans, "shorts": _shorts,
    "dress": _dress, "sneaker": _sneaker, "formal_shoe": _formal_shoe, "flip_flop": _flip_flop,
    "handbag": _handbag, "backpack": _backpack, "analog_watch": _analog_watch, "smart_watch": _smart_watch,
    "sunglasses": _sunglasses, "cap": _cap, "headphones": _headphones, "earbuds": _earbuds,
    "speaker": _speaker, "smartphone": _smartphone, "laptop": _laptop, "monitor": _monitor,
    "camera": _camera, "television": _television, "frying_pan": _frying_pan, "saucepan": _saucepan,
    "mug": _mug, "bottle": _bottle, "chair": _chair, "table": _table, "lamp": _lamp,
    "wall_clock": _wall_clock, "football": _football, "basketball": _basketball, "bicycle": _bicycle,
    "dumbbell": _dumbbell,
}

#: Shapes whose painter uses :meth:`Pen.fabric`, i.e. that can carry a pattern.
FABRIC_SHAPES = frozenset({"shirt", "tshirt", "sweater", "shorts", "dress"})


@functools.lru_cache(maxsize=32)
def _ramp(side: int, angle: int) -> Image.Image:
    """A 0..255 ramp along ``angle`` (0 = downwards), covering the square without gaps."""
    theta = math.radians(angle)
    grid = np.linspace(-1.0, 1.0, side)
    along = np.sin(theta) * grid[None, :] + np.cos(theta) * grid[:, None]
    along = (along - along.min()) / (along.max() - along.min())
    return Image.fromarray(np.round(along * 255).astype(np.uint8), mode="L")


def _paint_background(side: int, style: Style) -> Image.Image:
    first, second = style.background
    image = Image.new("RGB", (side, side), first)
    if style.horizon is not None:
        ImageDraw.Draw(image).rectangle([0, round(style.horizon * side), side, side], fill=second)
    elif first != second:
        image = Image.composite(Image.new("RGB", (side, side), second), image, _ramp(side, style.gradient_angle))
    return image


def draw_product(shape: str, style: Style, size: int) -> Image.Image:
    """Draw one product photo.

    Args:
        shape: Key of :data:`PAINTERS`.
        style: The product's variation.
        size: Side of the square output image in pixels.

    Returns:
        An RGB image of ``size`` x ``size``.
    """
    side = size * SUPERSAMPLE
    image = _paint_background(side, style)
    pen = Pen(image, style)
    # A soft floor shadow, as in studio product shots.
    pen.ellipse((0.1, 0.93, 0.9, 1.03), shade(style.background[1], 0.9))
    PAINTERS[shape](pen)
    if style.mirror:
        image = ImageOps.mirror(image)
    if style.rotation:
        # Bilinear is 4x faster than bicubic here; the box downsample below smooths what it leaves.
        image = image.rotate(style.rotation, resample=Image.Resampling.BILINEAR, fillcolor=style.background[0])
    if style.badge is not None:
        x, y, r, colour = style.badge
        ImageDraw.Draw(image).ellipse([(x - r) * side, (y - r) * side, (x + r) * side, (y + r) * side],
                                      fill=colour, outline=(255, 255, 255), width=max(1, side // 64))
    return image.reduce(SUPERSAMPLE)
