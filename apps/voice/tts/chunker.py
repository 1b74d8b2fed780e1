"""Split text into speakable pieces: whole sentences, and an early first clause.

Used two ways: ``split_sentences`` on complete text (TTS engines), and ``SentenceChunker``
on a stream of LLM deltas, which releases a piece as soon as it ends so speech can start
before the reply is finished. Chinese and English punctuation both end pieces; a decimal
point or an abbreviation like "Dr." does not.
"""

from __future__ import annotations

import re

# Ends a sentence: 。！？!?… and '.' not between digits; closing quotes/brackets may follow.
_SENTENCE_END = re.compile(r"(?:[。！？!?…]+|(?<!\d)\.(?!\d)|\.(?=\s)|\n+)[\"'”’」』）)\]]*")
# Ends a clause, used only to release the first piece early.
_CLAUSE_END = re.compile(r"[，,、；;：:]")
_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "st",
    "vs",
    "etc",
    "e.g",
    "i.e",
    "no",
    "jr",
    "sr",
}
FIRST_CLAUSE_MIN_CHARS = 8
MAX_PIECE_CHARS = 220


def _is_abbreviation(text: str, end: int) -> bool:
    """Whether the '.' ending at ``end`` closes an abbreviation such as "Dr."."""
    word = re.search(r"([A-Za-z.]+)\.$", text[:end])
    return bool(word) and word.group(1).lower() in _ABBREVIATIONS


def _boundaries(text: str) -> list[int]:
    ends = []
    for match in _SENTENCE_END.finditer(text):
        if match.group().startswith(".") and _is_abbreviation(text, match.start() + 1):
            continue
        ends.append(match.end())
    return ends


def _long_split(piece: str) -> list[str]:
    """Cut an over-long piece at clause marks or spaces so no chunk runs on for seconds."""
    out: list[str] = []
    while len(piece) > MAX_PIECE_CHARS:
        window = piece[:MAX_PIECE_CHARS]
        cut = (
            max((m.end() for m in _CLAUSE_END.finditer(window)), default=0) or window.rfind(" ") + 1
        )
        cut = cut if cut > 0 else MAX_PIECE_CHARS
        out.append(piece[:cut].strip())
        piece = piece[cut:]
    if piece.strip():
        out.append(piece.strip())
    return out


def split_sentences(text: str) -> list[str]:
    """Split complete text into sentences (kept with their punctuation)."""
    pieces: list[str] = []
    start = 0
    for end in _boundaries(text):
        pieces.extend(_long_split(text[start:end]))
        start = end
    pieces.extend(_long_split(text[start:]))
    return [p for p in pieces if re.search(r"\w", p)]


class SentenceChunker:
    """Accumulates streamed text and releases speakable pieces as they complete."""

    def __init__(self, *, early_first_clause: bool = True, first_words: int | None = None) -> None:
        """Set up an empty chunker.

        Args:
            early_first_clause: Release the first clause (at a comma) before its sentence ends.
            first_words: Also release the first piece after this many whole words (CJK:
                twice as many characters) even without punctuation. A live voice reply waits
                for the first piece, and a first sentence can take the model half a second.
        """
        self._buffer = ""
        self._first = early_first_clause
        self._first_words = first_words

    def push(self, delta: str) -> list[str]:
        """Add text; return the pieces that are now complete."""
        self._buffer += delta
        ready: list[str] = []
        ends = [
            e for e in _boundaries(self._buffer) if e < len(self._buffer) or self._ends_cleanly()
        ]
        if ends:
            cut = ends[-1]
            ready.extend(split_sentences(self._buffer[:cut]))
            self._buffer = self._buffer[cut:]
        elif self._first:
            clause = next(
                (
                    m.end()
                    for m in _CLAUSE_END.finditer(self._buffer)
                    if m.end() >= FIRST_CLAUSE_MIN_CHARS
                ),
                None,
            )
            if clause is None and self._first_words:
                clause = self._first_words_end()
            if clause is not None:
                ready.append(self._buffer[:clause].strip())
                self._buffer = self._buffer[clause:]
        if len(self._buffer) > MAX_PIECE_CHARS:
            *complete, rest = _long_split(self._buffer)
            ready.extend(complete)
            self._buffer = rest
        if ready:
            self._first = False
        return [p for p in ready if re.search(r"\w", p)]

    def _first_words_end(self) -> int | None:
        """Where the first ``first_words`` whole words end, if they are all in the buffer."""
        assert self._first_words
        cjk = re.findall(r"[\u3400-\u9fff]", self._buffer)
        if len(cjk) >= 2 * self._first_words:
            return [m.end() for m in re.finditer(r"[\u3400-\u9fff]", self._buffer)][
                2 * self._first_words - 1
            ]
        # A word is whole once a space follows it (the model may still be extending it).
        spaces = [m.start() for m in re.finditer(r"\S\s", self._buffer)]
        if len(spaces) >= self._first_words and spaces[self._first_words - 1] + 1 >= (
            FIRST_CLAUSE_MIN_CHARS
        ):
            return spaces[self._first_words - 1] + 1
        return None

    def _ends_cleanly(self) -> bool:
        # A trailing "." may still become "3.5" or "Dr. X": wait for the next character,
        # but CJK and !? marks cannot continue a number.
        return bool(re.search(r"[。！？!?…]$", self._buffer))

    def flush(self) -> list[str]:
        """Return whatever is left (end of the reply)."""
        rest, self._buffer = self._buffer, ""
        return split_sentences(rest)
