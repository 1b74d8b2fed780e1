import pytest

from apps.voice.tts.normalize import normalize, split_by_script


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("我想预订明天晚上7点2个人的座位。", "我想预订明天晚上七点两个人的座位。"),
        ("温度是25.5℃。", "温度是二十五点五摄氏度。"),
        ("电话13800138000", "电话一三八零零一三八零零零"),
        ("2024年增长了15%", "二零二四年增长了百分之十五"),
        ("速度60km/h，现在是7:30。", "速度六十公里每小时，现在是七点三十分。"),
        ("房间号0812", "房间号零八一二"),
        ("12个苹果", "十二个苹果"),
    ],
)
def test_chinese(text, spoken) -> None:
    assert normalize(text, "zh") == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("It costs $5.50.", "It costs 5.50 dollars."),
        ("About 20% off", "About 20 percent off"),
        ("10km away, 3 kg, 21°C", "10 kilometres away, 3 kilograms, 21 degrees Celsius"),
        ("Meet at 7:00 & bring tea", "Meet at 7 o'clock and bring tea"),
        ("I have 2 cats", "I have 2 cats"),
    ],
)
def test_english(text, spoken) -> None:
    assert normalize(text, "en") == spoken


def test_split_by_script() -> None:
    assert split_by_script("Hello 你好, this is 小夏。OK? 123") == [
        ("en", "Hello "),
        ("zh", "你好, "),
        ("en", "this is "),
        ("zh", "小夏。"),
        ("en", "OK? 123"),
    ]
    assert split_by_script("今天是2024年，") == [("zh", "今天是2024年，")]
    assert split_by_script("42") == [("en", "42")]
