from microlend.core import crypto


def test_encryption_round_trips_and_is_randomised() -> None:
    a, b = crypto.encrypt("110101199003071233", "k" * 40), crypto.encrypt("110101199003071233", "k" * 40)
    assert a != b
    assert crypto.decrypt(a, "k" * 40) == "110101199003071233"


def test_blind_index_is_stable_and_keyed() -> None:
    assert crypto.blind_index("11010519491231002x", "k1") == crypto.blind_index("11010519491231002X", "k1")
    assert crypto.blind_index("11010519491231002X", "k1") != crypto.blind_index("11010519491231002X", "k2")


def test_masks() -> None:
    assert crypto.mask("110101199003071234") == "1101**********1234"
    assert crypto.mask_phone("13812345678") == "138****5678"
    assert "*" in crypto.mask("1234")
