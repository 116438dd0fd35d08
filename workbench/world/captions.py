"""Caption templates for scenes and clips, and the zero-shot templates of the world."""
from __future__ import annotations

COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.1, 0.1),
    "green": (0.1, 0.7, 0.2),
    "blue": (0.15, 0.25, 0.9),
    "yellow": (0.95, 0.85, 0.1),
    "orange": (0.95, 0.5, 0.05),
    "purple": (0.55, 0.15, 0.7),
    "white": (0.97, 0.97, 0.97),
    "black": (0.05, 0.05, 0.05),
}
COLOR_NAMES: tuple[str, ...] = tuple(COLORS)
SIZE_WORDS = ("small", "medium", "large")
DIRECTIONS = ("right", "left", "up", "down")

PHOTO_TEMPLATES = (
    "a photo of {a_cls}.",
    "{a_color} {cls}.",
    "{a_cls} {ctx}.",
    "{a_color} {cls} {ctx}.",
    "{a_size} {cls}.",
    "{a_size} {color} {cls} {ctx}.",
    "a picture of {a_color} {cls}.",
    "{a_cls}.",
)
SKETCH_TEMPLATES = (
    "a sketch of {a_cls}.",
    "a drawing of {a_color} {cls}.",
    "a sketch of {a_cls} {ctx}.",
    "an outline of {a_cls}.",
)
CLIP_TEMPLATE = "{a_color} {cls} moving {direction} {ctx}."

# Zero-shot prompts for world classes: averaged over these, as CLIP averages its 80.
ZERO_SHOT_TEMPLATES = (
    "a photo of {a_cls}.",
    "{a_cls}.",
    "a picture of {a_cls}.",
)


def article(word: str) -> str:
    """'an' before a vowel sound, else 'a' (good enough for the world's vocabulary)."""
    return f"an {word}" if word[0] in "aeio" else f"a {word}"


def fill(template: str, cls: str, color: str = "", ctx: str = "", size: str = "",
         direction: str = "") -> str:
    return template.format(
        cls=cls, a_cls=article(cls), color=color, a_color=article(color) if color else "",
        ctx=ctx, size=size, a_size=article(size) if size else "", direction=direction,
    )


def zero_shot_templates() -> tuple:
    """Callables `classname -> prompt`, the form open_clip's zero-shot helper takes."""
    return tuple((lambda c, t=t: fill(t, c)) for t in ZERO_SHOT_TEMPLATES)
