import random
from datetime import date

import pytest

from microlend.core.errors import ValidationError
from microlend.demo import identities
from microlend.parties.kyc import (
    resident_id_check_char,
    uscc_check_char,
    validate_mobile,
    validate_resident_id,
    validate_uscc,
)


class TestResidentId:
    # The worked example of GB 11643-1999 and other published samples.
    @pytest.mark.parametrize("valid", ["11010519491231002X", "110101199003071233"])
    def test_published_samples_pass(self, valid: str) -> None:
        assert validate_resident_id(valid) == valid

    def test_lowercase_x_is_normalised(self) -> None:
        assert validate_resident_id("11010519491231002x") == "11010519491231002X"

    def test_wrong_check_digit_names_the_expected_one(self) -> None:
        with pytest.raises(ValidationError, match="the check digit does not match"):
            validate_resident_id("110105194912310023")

    def test_impossible_birth_date(self) -> None:
        body = "11010519990231002"
        with pytest.raises(ValidationError, match="1999-02-31 does not exist"):
            validate_resident_id(body + resident_id_check_char(body))

    def test_birth_in_the_future(self) -> None:
        body = "11010520300101002"
        with pytest.raises(ValidationError, match="not plausible"):
            validate_resident_id(body + resident_id_check_char(body), as_of=date(2026, 1, 1))

    @pytest.mark.parametrize("bad", ["", "1101051949123100", "11010519491231002Y", "A10105194912310023"])
    def test_malformed(self, bad: str) -> None:
        with pytest.raises(ValidationError, match="id_number"):
            validate_resident_id(bad)


class TestUnifiedSocialCreditCode:
    @pytest.mark.parametrize("valid", ["91350100M000100Y43", "91110000600037341L"])
    def test_published_codes_pass(self, valid: str) -> None:
        assert validate_uscc(valid) == valid

    def test_wrong_check_character(self) -> None:
        with pytest.raises(ValidationError, match="the check digit does not match"):
            validate_uscc("91350100M000100Y44")

    def test_letters_outside_the_alphabet(self) -> None:
        with pytest.raises(ValidationError, match="without I, O, S, V, Z"):
            validate_uscc("91350100M0001O0Y43")

    def test_check_char_30_maps_to_y_and_31_to_0(self) -> None:
        # every remainder maps into the alphabet
        rng = random.Random(7)
        for _ in range(500):
            code = identities.uscc(rng)
            assert uscc_check_char(code[:17]) == code[17]


class TestMobile:
    @pytest.mark.parametrize(("raw", "clean"), [("13812345678", "13812345678"), ("+86 138-1234-5678", "13812345678"),
                                                ("8613812345678", "13812345678")])
    def test_accepted_forms(self, raw: str, clean: str) -> None:
        assert validate_mobile(raw) == clean

    @pytest.mark.parametrize("bad", ["12812345678", "1381234567", "138123456789", "phone"])
    def test_malformed(self, bad: str) -> None:
        with pytest.raises(ValidationError, match="phone: a mainland mobile"):
            validate_mobile(bad)


class TestSyntheticIdentities:
    def test_generated_ids_and_phones_are_valid(self) -> None:
        rng = random.Random(1)
        for age in range(18, 80):
            birth = identities.birth_date_for_age(rng, age, date(2026, 6, 1))
            assert validate_resident_id(identities.resident_id(rng, birth)).startswith(tuple(identities.REGIONS))
            validate_mobile(identities.mobile(rng))


def test_a_birth_year_before_1900_is_not_plausible() -> None:
    with pytest.raises(ValidationError, match="1880-01-01 is not plausible"):
        validate_resident_id("440524188001010014")
