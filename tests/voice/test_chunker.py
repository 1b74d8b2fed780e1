import pytest

from apps.voice.tts.chunker import MAX_PIECE_CHARS, SentenceChunker, split_sentences


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("Hello there. How are you?", ["Hello there.", "How are you?"]),
        ("It costs 3.50 dollars. Thanks!", ["It costs 3.50 dollars.", "Thanks!"]),
        ("Ask Dr. Smith about it. OK?", ["Ask Dr. Smith about it.", "OK?"]),
        ("你好。今天天气怎么样？很好！", ["你好。", "今天天气怎么样？", "很好！"]),
        ('He said "stop." Then left.', ['He said "stop."', "Then left."]),
        ("Line one\nLine two", ["Line one", "Line two"]),
        ("Mixed 中文 and English。Next one.", ["Mixed 中文 and English。", "Next one."]),
        ("...", []),
        ("", []),
    ],
)
def test_split_sentences(text, pieces) -> None:
    assert split_sentences(text) == pieces


def test_long_sentences_are_cut_at_clauses() -> None:
    text = ("word " * 30 + ", ") * 4
    pieces = split_sentences(text)
    assert len(pieces) > 1
    assert all(len(p) <= MAX_PIECE_CHARS for p in pieces)


def _feed(deltas: list[str]) -> list[list[str]]:
    chunker = SentenceChunker()
    return [chunker.push(d) for d in deltas] + [chunker.flush()]


def test_streaming_releases_each_sentence_when_it_ends() -> None:
    assert _feed(["Sure. ", "The answer", " is 42! Anything", " else?"]) == [
        ["Sure."],
        [],
        ["The answer is 42!"],
        ["Anything else?"],
        [],
    ]


def test_a_trailing_period_waits_for_the_next_character() -> None:
    # "3." might become "3.5": nothing is released until the next delta shows which.
    assert _feed(["It is 3.", "5 degrees. ", "Cold."]) == [
        [],
        ["It is 3.5 degrees."],
        [],
        ["Cold."],
    ]


def test_first_clause_needs_enough_text() -> None:
    chunker = SentenceChunker()
    assert chunker.push("Well, I think that, ") == ["Well, I think that,"]
    assert chunker.push("more, ") == []  # only the first clause goes early
    assert chunker.push("done.") == []
    assert chunker.flush() == ["more, done."]


def test_chinese_first_clause() -> None:
    chunker = SentenceChunker()
    assert chunker.push("好的，我来帮你查一下北京的天气，") == ["好的，我来帮你查一下北京的天气，"]
    assert chunker.push("请稍等。") == ["请稍等。"]


def test_first_words_release_the_first_piece_without_punctuation() -> None:
    chunker = SentenceChunker(first_words=4)
    out: list[str] = []
    for token in ["The", " capital", " city", " of", " France", " is", " Paris", "."]:
        out += chunker.push(token)
    # A final "." may still become "3.5": the last sentence comes with the flush.
    assert out + chunker.flush() == ["The capital city of", "France is Paris."]


def test_first_words_wait_for_whole_words_and_apply_once() -> None:
    chunker = SentenceChunker(first_words=2)
    assert chunker.push("Wonder") == []
    assert chunker.push("ful wea") == []  # "wea" may still grow
    assert chunker.push("ther today is") == ["Wonderful weather"]
    assert chunker.push(" sunny and warm and") == []  # later pieces wait for punctuation
    assert chunker.push(" nice.") == []
    assert chunker.flush() == ["today is sunny and warm and nice."]


def test_first_words_in_chinese_count_characters() -> None:
    chunker = SentenceChunker(first_words=3)
    out: list[str] = []
    for char in "今天天气很好我们去公园吧":
        out += chunker.push(char)
    assert out == ["今天天气很好"]
