import hashlib
import math
import re

import pytest

from apps.licensing import keys


def test_license_key_format() -> None:
    generated = keys.generate_key(keys.LICENSE_PREFIX)
    assert re.fullmatch(r"lic_[0-9A-Za-z]{38}", generated.value)
    assert generated.lookup_prefix == generated.value[:12]
    assert generated.digest == hashlib.sha256(generated.value.encode()).hexdigest()
    assert keys.key_kind(generated.value) == "license"


def test_client_secret_format() -> None:
    generated = keys.generate_key(keys.CLIENT_SECRET_PREFIX)
    assert re.fullmatch(r"ek_[0-9A-Za-z]{38}", generated.value)
    assert keys.key_kind(generated.value) == "client_secret"


def test_random_part_carries_at_least_128_bits() -> None:
    assert keys.RANDOM_CHARS * math.log2(62) >= 128


def test_keys_are_unique() -> None:
    values = {keys.generate_key(keys.LICENSE_PREFIX).value for _ in range(2000)}
    assert len(values) == 2000


def test_checksum_rejects_any_single_character_change() -> None:
    value = keys.generate_key(keys.LICENSE_PREFIX).value
    for position in range(len("lic_"), len(value)):
        original = value[position]
        replacement = "a" if original != "a" else "b"
        mutated = value[:position] + replacement + value[position + 1 :]
        assert keys.key_kind(mutated) is None, position


@pytest.mark.parametrize(
    "candidate",
    ["", "lic_", "sk-abc", "lic_short", "LIC_" + "a" * 38, "lic_" + "-" * 38, "ek_" + "a" * 37],
)
def test_malformed_keys_are_not_recognised(candidate: str) -> None:
    assert keys.key_kind(candidate) is None


def test_unknown_kind_cannot_be_generated() -> None:
    with pytest.raises(ValueError):
        keys.generate_key("sk_")
