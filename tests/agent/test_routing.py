import pytest

from apps.agent.providers.scripted import ScriptedLlm
from apps.agent.routing import Route, UnknownModel, available_routes, providers, resolve_model

TWO = {
    "local": {
        "BACKEND": "apps.agent.providers.scripted.ScriptedLlm",
        "OPTIONS": {"models": ["qwen-0.5b", "shared"]},
    },
    "DashScope": {
        "BACKEND": "apps.agent.providers.scripted.ScriptedLlm",
        "OPTIONS": {"models": ["qwen-max", "shared"]},
    },
}


@pytest.fixture
def two(settings):
    settings.AGENT_PROVIDERS = TWO
    return settings


@pytest.mark.parametrize(
    ("name", "route"),
    [
        (None, Route("local", "qwen-0.5b")),
        ("", Route("local", "qwen-0.5b")),
        ("qwen-max", Route("DashScope", "qwen-max")),
        ("shared", Route("local", "shared")),
        ("shared@DashScope", Route("DashScope", "shared")),
        ("qwen-max@dashscope", Route("DashScope", "qwen-max")),
        ("gpt-realtime", Route("local", "qwen-0.5b")),
        ("gpt-4o-realtime-preview-2024-12-17", Route("local", "qwen-0.5b")),
    ],
)
def test_resolve(two, name, route) -> None:
    assert resolve_model(name) == route


@pytest.mark.parametrize("name", ["qwen-max@local", "nope", "qwen-max@", "@DashScope", "gpt-4o"])
def test_unknown_models(two, name) -> None:
    with pytest.raises(UnknownModel, match="does not exist"):
        resolve_model(name)


def test_no_providers_is_a_clear_error(settings) -> None:
    settings.AGENT_PROVIDERS = {}
    with pytest.raises(UnknownModel, match="No language model is configured"):
        resolve_model(None)


def test_a_provider_serving_the_name_wins_over_an_alias(two) -> None:
    two.AGENT_MODEL_ALIASES = ["qwen-max", "qwen-plus"]
    assert resolve_model("qwen-max") == Route("DashScope", "qwen-max")
    assert resolve_model("qwen-plus") == Route("local", "qwen-0.5b")
    with pytest.raises(UnknownModel):
        resolve_model("qwen-plus@DashScope")


def test_aliases_come_from_settings(two) -> None:
    two.AGENT_MODEL_ALIASES = []
    with pytest.raises(UnknownModel):
        resolve_model("gpt-realtime")


def test_broken_provider_is_skipped_and_logged(settings, caplog) -> None:
    settings.AGENT_PROVIDERS = {
        "broken": {"BACKEND": "apps.agent.providers.missing.Nothing"},
        "wrongkind": {"BACKEND": "apps.core.ids.BASE62_ALPHABET"},
        "ok": {
            "BACKEND": "apps.agent.providers.scripted.ScriptedLlm",
            "OPTIONS": {"models": ["m"]},
        },
    }
    assert list(providers()) == ["ok"]
    assert available_routes() == [Route("ok", "m")]
    assert "LLM provider failed to load" in caplog.text


def test_providers_are_loaded_once(two) -> None:
    assert providers() is providers()
    assert isinstance(providers()["local"], ScriptedLlm)


def test_scripted_needs_a_model() -> None:
    with pytest.raises(ValueError):
        ScriptedLlm(models=[])
