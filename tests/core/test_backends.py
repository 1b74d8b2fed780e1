import pytest

from apps.agent.base import LlmProvider
from apps.core.backends import BackendError, load_backend
from apps.core.ids import BASE62_ALPHABET, prefixed_id, session_id


def test_loads_with_options() -> None:
    provider = load_backend(
        {"BACKEND": "apps.agent.providers.scripted.ScriptedLlm", "OPTIONS": {"models": ["a"]}},
        LlmProvider,
        name="p",
    )
    assert provider.models() == ["a"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({}, "needs a BACKEND"),
        ({"BACKEND": "apps.nowhere.Thing"}, "cannot import"),
        ({"BACKEND": "apps.core.ids.prefixed_id"}, "not a subclass"),
        (
            {"BACKEND": "apps.agent.providers.scripted.ScriptedLlm", "OPTIONS": {"colour": 1}},
            "bad OPTIONS",
        ),
        (
            {"BACKEND": "apps.agent.providers.scripted.ScriptedLlm", "OPTIONS": [1]},
            "must be a mapping",
        ),
    ],
)
def test_bad_entries_say_what_is_wrong(entry, message) -> None:
    with pytest.raises(BackendError, match=message):
        load_backend(entry, LlmProvider, name="AGENT_PROVIDERS['x']")


def test_prefixed_ids() -> None:
    value = session_id()
    assert value.startswith("sess_") and len(value) == 27
    assert set(value[5:]) <= set(BASE62_ALPHABET)
    assert len({prefixed_id("item") for _ in range(1000)}) == 1000
