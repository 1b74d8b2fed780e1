"""Text normalisation before synthesis: numbers, units and symbols read the way people say them.

Chinese uses cn2an for numerals, with the readings it gets wrong handled first: digit strings
(phone numbers, years) are read digit by digit, 2 before a measure word is 两, and percent
is 百分之…. English keeps numbers for the phonemiser (which reads them well) and spells out
the symbols and units it does not.
"""

from __future__ import annotations

import re

import cn2an

_CJK = r"\u3400-\u9fff\uf900-\ufaff"
_ZH_DIGITS = "零一二三四五六七八九"
_MEASURE_WORDS = "个位只条张本件次台辆杯碗块点岁天年种名家间头匹双对"
_ZH_UNITS = {
    "km/h": "公里每小时",
    "km": "公里",
    "kg": "公斤",
    "cm": "厘米",
    "mm": "毫米",
    "ml": "毫升",
    "℃": "摄氏度",
    "°C": "摄氏度",
    "°": "度",
    "m": "米",
    "g": "克",
    "l": "升",
    "L": "升",
}
_EN_UNITS = {
    "km/h": "kilometres per hour",
    "mph": "miles per hour",
    "km": "kilometres",
    "kg": "kilograms",
    "cm": "centimetres",
    "mm": "millimetres",
    "ml": "millilitres",
    "°C": "degrees Celsius",
    "℃": "degrees Celsius",
    "°F": "degrees Fahrenheit",
    "m": "metres",
    "g": "grams",
}
_CURRENCY_EN = {"$": "dollars", "€": "euros", "£": "pounds", "¥": "yuan", "￥": "yuan"}


def _digits_zh(digits: str) -> str:
    return "".join(_ZH_DIGITS[int(d)] for d in digits)


def _number_zh(match: re.Match[str]) -> str:
    text = match.group(0)
    if "." in text:
        return cn2an.an2cn(text)
    # Phone numbers, codes and numbers with leading zeros are read digit by digit.
    if len(text) >= 5 or (len(text) > 1 and text.startswith("0")):
        return _digits_zh(text)
    return cn2an.an2cn(text)


def normalize_zh(text: str) -> str:
    """Chinese text with digits, percentages and units spelled out in characters."""
    text = re.sub(r"(\d{4})(?=年)", lambda m: _digits_zh(m.group(1)), text)
    text = re.sub(r"(\d+(?:\.\d+)?)\s*%", lambda m: "百分之" + cn2an.an2cn(m.group(1)), text)
    for unit, word in sorted(_ZH_UNITS.items(), key=lambda kv: -len(kv[0])):
        text = re.sub(rf"(\d)\s*{re.escape(unit)}(?![A-Za-z])", rf"\g<1>{word}", text)
    text = re.sub(
        r"(\d{1,2}):(\d{2})",
        lambda m: (
            f"{cn2an.an2cn(m.group(1))}点{cn2an.an2cn(str(int(m.group(2))))}分"
            if m.group(2) != "00"
            else f"{cn2an.an2cn(m.group(1))}点"
        ),
        text,
    )
    text = re.sub(rf"(?<![\d.])2(?=[{_MEASURE_WORDS}])", "两", text)
    return re.sub(r"\d+(?:\.\d+)?", _number_zh, text)


def normalize_en(text: str) -> str:
    """English text with currency, percent, units and times spelled out."""
    for symbol, word in _CURRENCY_EN.items():
        text = re.sub(rf"{re.escape(symbol)}\s*(\d+(?:\.\d+)?)", rf"\1 {word}", text)
    text = re.sub(r"(\d)\s*%", r"\1 percent", text)
    for unit, word in sorted(_EN_UNITS.items(), key=lambda kv: -len(kv[0])):
        text = re.sub(rf"(\d)\s*{re.escape(unit)}(?![A-Za-z])", rf"\1 {word}", text)
    text = re.sub(r"\b(\d{1,2}):00\b", r"\1 o'clock", text)
    return re.sub(r"\s*&\s*", " and ", text)


def split_by_script(text: str) -> list[tuple[str, str]]:
    """Cut mixed text into runs of ("zh", …) and ("en", …) so each goes to the right voice.

    Digits and punctuation stay with the run they sit in; a run with no letters or
    characters at all joins its neighbour.
    """
    runs: list[tuple[str, str]] = []
    for piece in re.findall(rf"[{_CJK}]+[^A-Za-z{_CJK}]*|[^{_CJK}]+", text):
        language = "zh" if re.match(rf"[{_CJK}]", piece) else "en"
        if language == "en" and not re.search(r"[A-Za-z]", piece):
            language = runs[-1][0] if runs else "zh" if re.search(rf"[{_CJK}]", text) else "en"
        if runs and runs[-1][0] == language:
            runs[-1] = (language, runs[-1][1] + piece)
        else:
            runs.append((language, piece))
    return [(lang, chunk) for lang, chunk in runs if chunk.strip()]


def normalize(text: str, language: str) -> str:
    """Normalise text for a voice of ``language``."""
    return normalize_zh(text) if language == "zh" else normalize_en(text)
