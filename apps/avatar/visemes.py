"""Visemes: the mouth shapes speech is drawn with, and which sound makes which.

A TTS engine times its phonemes (``apps.voice.tts.base.Phoneme``): Piper in espeak IPA
(``h``, ``ə``, ``ˈoʊ``, pauses as spaces and punctuation), the Mandarin voice in Baker pinyin
phones (initials ``zh``, ``b`` …, finals with tone digits ``ang1``, ``v3`` …, ``sil``), the
scripted engine one letter per "phoneme". ``viseme_for`` maps any of them to one of ten
visemes; each viseme has a ``MouthPose``, the few numbers a renderer draws a mouth from.

Ten shapes, after the common Preston Blair / MPEG-4 groupings: closed lips (m b p), lip on
teeth (f v), tongue between teeth (th), narrow with teeth (t d n l s z k g …), protruded
(sh ch j zh r), and the vowels: open (a), mid (e, ə), wide (i), round (o) and puckered (u w).
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass


class Viseme(enum.Enum):
    """A mouth shape."""

    SIL = "sil"
    PP = "pp"
    FF = "ff"
    TH = "th"
    DD = "dd"
    CH = "ch"
    AA = "aa"
    EH = "eh"
    IH = "ih"
    OH = "oh"
    UW = "uw"


@dataclass(frozen=True, slots=True)
class MouthPose:
    """How a mouth looks, in renderer-neutral numbers.

    Attributes:
        open: Jaw and lip opening, 0 (lips together) to 1 (wide open "a").
        width: Mouth width relative to rest, 0.7 (puckered) to 1.3 (wide smile-like "i").
        round: Lip rounding/protrusion, 0 to 1 ("o", "u").
        teeth: How much of the upper teeth shows, 0 to 1 ("f", "th", "s", "i").
    """

    open: float
    width: float
    round: float
    teeth: float

    @property
    def closed(self) -> bool:
        """Lips together (no opening at all)."""
        return self.open <= 0.0

    def blend(self, other: MouthPose, weight: float) -> MouthPose:
        """``self`` moved ``weight`` (0–1) of the way to ``other``."""
        keep = 1.0 - weight
        return MouthPose(
            open=self.open * keep + other.open * weight,
            width=self.width * keep + other.width * weight,
            round=self.round * keep + other.round * weight,
            teeth=self.teeth * keep + other.teeth * weight,
        )

    def scaled(self, amount: float) -> MouthPose:
        """The pose with its opening scaled by ``amount`` (rest width and no rounding at 0)."""
        return REST.blend(self, max(0.0, min(1.0, amount)))


REST = MouthPose(open=0.0, width=1.0, round=0.0, teeth=0.0)

POSES: dict[Viseme, MouthPose] = {
    Viseme.SIL: REST,
    Viseme.PP: MouthPose(open=0.0, width=0.95, round=0.1, teeth=0.0),
    Viseme.FF: MouthPose(open=0.12, width=1.05, round=0.0, teeth=0.9),
    Viseme.TH: MouthPose(open=0.22, width=1.05, round=0.0, teeth=0.7),
    Viseme.DD: MouthPose(open=0.25, width=1.1, round=0.0, teeth=0.6),
    Viseme.CH: MouthPose(open=0.3, width=0.85, round=0.6, teeth=0.5),
    Viseme.AA: MouthPose(open=0.9, width=1.05, round=0.0, teeth=0.3),
    Viseme.EH: MouthPose(open=0.55, width=1.15, round=0.0, teeth=0.4),
    Viseme.IH: MouthPose(open=0.3, width=1.3, round=0.0, teeth=0.7),
    Viseme.OH: MouthPose(open=0.65, width=0.85, round=0.8, teeth=0.1),
    Viseme.UW: MouthPose(open=0.25, width=0.72, round=1.0, teeth=0.0),
}

# espeak IPA (Piper). Vowels go by their first letter (diphthongs start there).
_IPA: dict[str, Viseme] = {
    **dict.fromkeys("pbm", Viseme.PP),
    **dict.fromkeys("fvɱ", Viseme.FF),
    **dict.fromkeys("θð", Viseme.TH),
    **dict.fromkeys("tdnlszkgŋhɾɡʔxçjɫɬ", Viseme.DD),
    # English r is said with rounded, pushed-out lips, like sh.
    **dict.fromkeys("ʃʒʧʤrɹ", Viseme.CH),
    **dict.fromkeys("aɑæɐʌ", Viseme.AA),
    **dict.fromkeys("eɛəɜɚɝ", Viseme.EH),
    **dict.fromkeys("iɪyʏ", Viseme.IH),
    **dict.fromkeys("oɔɒøœ", Viseme.OH),
    **dict.fromkeys("uʊwɯ", Viseme.UW),
}
# Baker pinyin initials (the finals are vowels, by their first letter below).
_PINYIN_INITIALS: dict[str, Viseme] = {
    **dict.fromkeys(("b", "p", "m"), Viseme.PP),
    "f": Viseme.FF,
    **dict.fromkeys(("d", "t", "n", "l", "g", "k", "h", "z", "c", "s", "j", "q", "x"), Viseme.DD),
    **dict.fromkeys(("zh", "ch", "sh", "r"), Viseme.CH),
}
_PINYIN_FINAL_START: dict[str, Viseme] = {
    "a": Viseme.AA,
    "e": Viseme.EH,
    "i": Viseme.IH,
    "o": Viseme.OH,
    "u": Viseme.UW,
    "v": Viseme.UW,  # ü
}
# Symbols that are no sound: stress and length marks, pauses, Piper's pad/start/end tokens.
_SILENT = frozenset({"", "sil", "sp", "spn", "pau", "eos", "bos", "_", "^", "$", "#"})


def viseme_for(symbol: str) -> Viseme:
    """The viseme of one phoneme symbol (IPA, pinyin phone or a letter); SIL for pauses.

    Unknown non-silent symbols count as DD (a neutral, slightly open consonant), so speech
    never freezes the mouth shut.
    """
    text = symbol.strip().lower()
    if text in _SILENT or not text:
        return Viseme.SIL
    if text in _PINYIN_INITIALS:
        return _PINYIN_INITIALS[text]
    bare = text.rstrip("012345")
    if bare != text or bare in ("er", "ng"):
        # A pinyin final with its tone digit (or the neutral-tone er/ng). The mouth shows
        # its main vowel: a medial i/u/ü before another vowel is brief (ia, uo, ve, iou).
        if bare.startswith("iii"):
            return Viseme.IH  # the apical vowel of zhi/chi/shi/zi/ci/si
        if len(bare) > 1 and bare[0] in "iuv" and bare[1] in "aeiouv":
            bare = bare[1:]
        return _PINYIN_FINAL_START.get(bare[:1], Viseme.EH)
    for char in unicodedata.normalize("NFD", text):
        if unicodedata.category(char).startswith(("M", "P", "Z", "S")) or char in "ˈˌːˑ":
            continue  # stress, length, tone marks, punctuation, spaces
        if char in _IPA:
            return _IPA[char]
        if char.isalpha():
            return _letter(char)
    return Viseme.SIL


def is_modifier(symbol: str) -> bool:
    """A stress or length mark, timed as a "phoneme" of its own by espeak (Piper).

    It belongs to the sound next to it: ``VisemeTrack`` holds the previous shape through it
    rather than closing the mouth in the middle of a long vowel.
    """
    text = symbol.strip()
    return bool(text) and all(
        char in "ˈˌːˑ" or unicodedata.category(char) in ("Lm", "Sk", "Mn") for char in text
    )


def _letter(char: str) -> Viseme:
    # Plain letters (the scripted engine, unknown alphabets): by how they are usually said.
    if char in "aeiou":
        return {"a": Viseme.AA, "e": Viseme.EH, "i": Viseme.IH, "o": Viseme.OH}.get(char, Viseme.UW)
    return _IPA.get(char, Viseme.DD)
