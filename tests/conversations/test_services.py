import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.conversations.exports import transcript_as_dict, transcript_as_text
from apps.conversations.models import Conversation, ConversationItem
from apps.conversations.selectors import license_audio_ms_this_month
from apps.conversations.services import (
    UsageDelta,
    conversation_add_usage,
    conversation_end,
    conversation_item_save,
    conversation_start,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(issued):
    return conversation_start(
        license_id=issued.license.pk,
        transport="websocket",
        user_id="u1",
        model="scripted-echo",
        provider="scripted",
    )


def _transcript(conversation) -> None:
    conversation_item_save(
        conversation_id=conversation.pk,
        item_id="item_1",
        type="message",
        role="user",
        text="What's the weather in Paris?",
        audio_ms=1800,
    )
    conversation_item_save(
        conversation_id=conversation.pk,
        item_id="item_2",
        type="function_call",
        call_id="call_1",
        name="get_weather",
        arguments='{"city": "Paris"}',
    )
    conversation_item_save(
        conversation_id=conversation.pk,
        item_id="item_3",
        type="function_call_output",
        call_id="call_1",
        output='{"temp_c": 21}',
    )
    conversation_item_save(
        conversation_id=conversation.pk,
        item_id="item_4",
        type="message",
        role="assistant",
        text="It is 21 degrees and",
        status="incomplete",
        audio_ms=1500,
        truncated_at_ms=1500,
    )


def test_session_id_and_defaults(conversation) -> None:
    assert conversation.pk.startswith("sess_")
    assert conversation.dialect == "ga" and conversation.ended_at is None


def test_items_get_positions_in_order(conversation) -> None:
    _transcript(conversation)
    assert list(conversation.items.values_list("item_id", "position")) == [
        ("item_1", 0),
        ("item_2", 1),
        ("item_3", 2),
        ("item_4", 3),
    ]


def test_saving_an_item_again_updates_it_in_place(conversation) -> None:
    conversation_item_save(
        conversation_id=conversation.pk,
        item_id="item_a",
        type="message",
        role="assistant",
        text="Hello there, how",
        status="in_progress",
    )
    conversation_item_save(
        conversation_id=conversation.pk,
        item_id="item_a",
        type="message",
        role="assistant",
        text="Hello",
        status="incomplete",
        truncated_at_ms=400,
    )
    item = ConversationItem.objects.get()
    assert (item.text, item.status, item.truncated_at_ms, item.position) == (
        "Hello",
        "incomplete",
        400,
        0,
    )


def test_unknown_item_fields_are_refused(conversation) -> None:
    with pytest.raises(TypeError):
        conversation_item_save(
            conversation_id=conversation.pk, item_id="i", type="message", colour="red"
        )


def test_usage_adds_up_and_feeds_the_monthly_total(conversation, issued) -> None:
    conversation_add_usage(
        conversation_id=conversation.pk, usage=UsageDelta(input_audio_ms=1000, text_tokens_in=5)
    )
    conversation_add_usage(
        conversation_id=conversation.pk, usage=UsageDelta(output_audio_ms=2500, text_tokens_out=7)
    )
    conversation.refresh_from_db()
    assert (conversation.input_audio_ms, conversation.output_audio_ms) == (1000, 2500)
    assert (conversation.text_tokens_in, conversation.text_tokens_out) == (5, 7)
    assert license_audio_ms_this_month(license_id=issued.license.pk) == 3500
    Conversation.objects.create(
        license=issued.license,
        transport="webrtc",
        input_audio_ms=9999,
        started_at=timezone.now() - timedelta(days=45),
    )
    assert license_audio_ms_this_month(license_id=issued.license.pk) == 3500


def test_first_end_reason_wins(conversation) -> None:
    conversation_end(conversation_id=conversation.pk, reason="session_expired")
    conversation_end(conversation_id=conversation.pk, reason="client_closed")
    conversation.refresh_from_db()
    assert conversation.end_reason == "session_expired" and conversation.ended_at is not None


def test_exports(conversation) -> None:
    _transcript(conversation)
    data = transcript_as_dict(conversation)
    json.dumps(data)
    assert data["user_id"] == "u1" and data["license"] == "Test license"
    assert [i["type"] for i in data["items"]] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    assert data["items"][3]["truncated_at_ms"] == 1500
    text = transcript_as_text(conversation)
    assert "user: What's the weather in Paris?" in text
    assert 'function call get_weather({"city": "Paris"})' in text
    assert "assistant: It is 21 degrees and [interrupted]" in text


def test_admin_lists_searches_and_exports(admin_client, conversation) -> None:
    _transcript(conversation)
    other = conversation_start(license_id=None, transport="webrtc", user_id="someone-else")
    conversation_item_save(
        conversation_id=other.pk, item_id="x", type="message", role="user", text="bonjour"
    )
    page = admin_client.get("/admin/conversations/conversation/", {"q": "u1"}).content.decode()
    assert conversation.pk in page and other.pk not in page
    page = admin_client.get("/admin/conversations/conversation/", {"q": "Paris"}).content.decode()
    assert conversation.pk in page and other.pk not in page
    detail = admin_client.get(f"/admin/conversations/conversation/{conversation.pk}/change/")
    assert detail.status_code == 200 and "get_weather" in detail.content.decode()
    as_json = admin_client.get(
        f"/admin/conversations/conversation/{conversation.pk}/transcript.json"
    )
    assert as_json.json()["items"][0]["text"] == "What's the weather in Paris?"
    assert "attachment" in as_json["Content-Disposition"]
    as_text = admin_client.get(
        f"/admin/conversations/conversation/{conversation.pk}/transcript.txt"
    )
    assert as_text.content.decode().startswith(f"Conversation {conversation.pk}")
    assert (
        admin_client.get(
            f"/admin/conversations/conversation/{conversation.pk}/transcript.pdf"
        ).status_code
        == 404
    )
    bulk = admin_client.post(
        "/admin/conversations/conversation/",
        {"action": "export_json", "_selected_action": [conversation.pk, other.pk]},
    )
    assert {c["id"] for c in json.loads(bulk.content)} == {conversation.pk, other.pk}
    bulk_text = admin_client.post(
        "/admin/conversations/conversation/",
        {"action": "export_text", "_selected_action": [other.pk]},
    )
    assert "user: bonjour" in bulk_text.content.decode()


def test_transcript_download_needs_the_view_permission(
    client, conversation, django_user_model
) -> None:
    staff = django_user_model.objects.create_user("viewer", password="pw-123456789", is_staff=True)
    client.force_login(staff)
    url = f"/admin/conversations/conversation/{conversation.pk}/transcript.json"
    assert client.get(url).status_code == 403
