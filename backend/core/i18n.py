"""The two languages the API speaks, chosen by `Accept-Language` (zh-CN unless asked)."""

from __future__ import annotations

from typing import Literal

Language = Literal["zh-CN", "en"]
DEFAULT_LANGUAGE: Language = "zh-CN"


def negotiate(accept_language: str | None) -> Language:
    """The best of zh-CN and en for an `Accept-Language` header, honouring q-values."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    best: tuple[float, Language] | None = None
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        language: Language | None = None
        if tag.startswith("zh"):
            language = "zh-CN"
        elif tag.startswith("en"):
            language = "en"
        elif tag == "*":
            language = DEFAULT_LANGUAGE
        if language is None:
            continue
        # Earlier entries win ties, as browsers list preferences in order.
        score = quality - position * 1e-6
        if best is None or score > best[0]:
            best = (score, language)
    return best[1] if best else DEFAULT_LANGUAGE
