"""The joint-modelling building blocks: Paillier-masked gradients equal the plain ones, messages are
authenticated and replays refused, the two PSI runs agree, the partner's model part never leaves it."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.partner_wire import InProcess

from microlend.core.errors import ValidationError
from microlend.risk.federation import crypto
from microlend.risk.federation.binning import fit_bins, woe_from_counts
from microlend.risk.federation.keys import (
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    NotAuthenticated,
    PartnershipKey,
    ReplayGuard,
    fresh_headers,
    generate_key,
    request_signature,
    verify_request,
)
from microlend.risk.federation.partner import PartnerService
from microlend.risk.federation.training import private_intersection

KEY = PartnershipKey(bytes(range(32)))


@pytest.fixture(scope="module")
def paillier_1024() -> tuple[Any, Any]:
    return crypto.keypair(1024)


class TestMaskedEncryptedGradient:
    def test_the_binned_gradient_under_encryption_equals_the_plain_gradient(self, paillier_1024: Any) -> None:
        pk, sk = paillier_1024
        rng = np.random.default_rng(7)
        residual = rng.normal(0, 3, 60)
        bins = rng.integers(0, 4, 60).astype(np.intp)
        woe = np.array([-0.8, -0.1, 0.3, 1.2])
        plain = float((residual * woe[bins]).sum())
        enc = crypto.encrypt(pk, crypto.to_fixed(residual))
        g = crypto.weighted_bin_sums(pk, enc, bins, crypto.to_fixed(woe))
        r = crypto.random_mask(pk)
        opened = crypto.decrypt(sk, [crypto.mask(pk, g, r)])[0]  # what the key holder sees: value + mask
        value = crypto.signed(opened - r, pk.n) / crypto.SCALE**2
        assert value == pytest.approx(plain, abs=1e-4)

    def test_a_plaintext_shift_under_encryption_adds_the_partner_part(self, paillier_1024: Any) -> None:
        pk, sk = paillier_1024
        bank_part = [-5, 17, 0, 123456]
        partner_part = [3, -20, 9, -1]
        enc = crypto.encrypt(pk, bank_part)
        shifted = [crypto.add_plain(pk, c, v) for c, v in zip(enc, partner_part, strict=True)]
        assert [crypto.signed(v, pk.n) for v in crypto.decrypt(sk, shifted)] == [-2, -3, 9, 123455]

    def test_the_mask_hides_the_value_and_is_rerandomised(self, paillier_1024: Any) -> None:
        pk, sk = paillier_1024
        c = crypto.encrypt(pk, [42])[0]
        r1, r2 = crypto.random_mask(pk), crypto.random_mask(pk)
        a, b = crypto.decrypt(sk, [crypto.mask(pk, c, r1), crypto.mask(pk, c, r2)])
        assert a != b and a != 42 and b != 42
        assert crypto.mask(pk, c, r1) != crypto.mask(pk, c, r1)  # fresh randomness each time

    def test_the_owner_encrypts_with_crt_factors_that_decrypt_like_phe_ciphertexts(self, paillier_1024: Any) -> None:
        pk, sk = paillier_1024
        values = [-(1 << 40), -1, 0, 1, 7, 123456789, 1 << 50]
        for workers in (1, 2):  # 2: the vector is shared out over a worker process
            own = crypto.OwnKey(pk, sk, workers=workers)
            longer = values * 40  # past the pool's threshold
            enc = own.encrypt(longer)
            assert [crypto.signed(v, pk.n) for v in crypto.decrypt(sk, enc)] == longer
            assert len(set(enc)) == len(enc)  # fresh randomness for every value, equal plaintexts too
        # each factor is an n-th residue: alone it is an encryption of 0
        factors = crypto.obfuscators(int(sk.p), int(sk.q), 5)
        assert crypto.decrypt(sk, factors) == [0] * 5
        # phe's ciphertexts and these add up under encryption
        mixed = crypto.add(pk, own.encrypt([5])[0], crypto.encrypt(pk, [-8])[0])
        assert crypto.signed(crypto.decrypt(sk, [mixed])[0], pk.n) == -3

    def test_a_short_key_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="key-bits"):
            crypto.keypair(300)


class TestAuthentication:
    def _headers(self, key: PartnershipKey, path: str, body: bytes, ts: str | None = None) -> dict[str, str]:
        stamp, nonce = fresh_headers()
        stamp = ts or stamp
        return {HEADER_TIMESTAMP.lower(): stamp, HEADER_NONCE.lower(): nonce,
                HEADER_SIGNATURE.lower(): request_signature(key, path, stamp, nonce, body)}

    def test_a_signed_message_passes_once_and_its_replay_is_refused(self) -> None:
        guard = ReplayGuard()
        headers = self._headers(KEY, "/federation/hello", b"{}")
        verify_request(KEY, guard, "/federation/hello", headers, b"{}")
        with pytest.raises(NotAuthenticated, match="replayed"):
            verify_request(KEY, guard, "/federation/hello", headers, b"{}")

    def test_a_wrong_key_or_a_changed_body_or_path_is_refused(self) -> None:
        other = PartnershipKey(bytes(32))
        headers = self._headers(other, "/federation/hello", b"{}")
        with pytest.raises(NotAuthenticated, match="wrong --key-file"):
            verify_request(KEY, ReplayGuard(), "/federation/hello", headers, b"{}")
        headers = self._headers(KEY, "/federation/hello", b"{}")
        with pytest.raises(NotAuthenticated):
            verify_request(KEY, ReplayGuard(), "/federation/hello", headers, b'{"a":1}')
        with pytest.raises(NotAuthenticated):
            verify_request(KEY, ReplayGuard(), "/federation/score", headers, b"{}")

    def test_a_stale_message_is_refused(self) -> None:
        headers = self._headers(KEY, "/federation/hello", b"{}", ts="1000000000")
        with pytest.raises(NotAuthenticated, match="stale"):
            verify_request(KEY, ReplayGuard(), "/federation/hello", headers, b"{}")

    def test_keygen_writes_a_private_file_and_never_overwrites(self, tmp_path: Path) -> None:
        path = tmp_path / "partner.key"
        fingerprint = generate_key(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert PartnershipKey.load(path).fingerprint == fingerprint
        with pytest.raises(ValidationError, match="never overwritten"):
            generate_key(path)
        (tmp_path / "junk.key").write_text("hello")
        with pytest.raises(ValidationError, match="not a partnership key"):
            PartnershipKey.load(tmp_path / "junk.key")


class TestIntersection:
    def test_both_sides_find_the_same_shared_ids_in_the_same_order(self, tmp_path: Path) -> None:
        partner_ids = [f"11010119900101{i:04d}" for i in range(0, 60)]
        bank_ids = [f"11010119900101{i:04d}" for i in range(40, 90)]
        frame = pd.DataFrame({"id": partner_ids, "x": range(60)})
        service = PartnerService(frame, "id", KEY, tmp_path)
        hashes = [KEY.hash_id(i) for i in bank_ids]
        session, shared = private_intersection(InProcess(service), KEY, hashes)
        assert sorted(bank_ids[r] for r in shared) == [f"11010119900101{i:04d}" for i in range(40, 60)]
        partner_rows = service._sessions[session].shared_rows
        assert partner_rows is not None
        assert [partner_ids[r] for r in partner_rows] == [bank_ids[r] for r in shared]

    def test_a_repeated_id_is_refused(self, tmp_path: Path) -> None:
        frame = pd.DataFrame({"id": ["A1", "a1 "], "x": [1, 2]})
        with pytest.raises(ValidationError, match="more than once"):
            PartnerService(frame, "id", KEY, tmp_path)


class TestBinning:
    def test_quantile_bins_hold_the_minimum_share_and_woe_orders_risk(self) -> None:
        rng = np.random.default_rng(3)
        frame = pd.DataFrame({"x": rng.normal(size=1000), "c": rng.choice(["a", "b", "rare"], 1000,
                                                                          p=[0.6, 0.38, 0.02])})
        bins = {b.name: b for b in fit_bins(frame, ["x", "c"], min_share=0.05)}
        counts = np.bincount(bins["x"].assign(frame["x"]))
        assert counts[:-1].min() >= 50
        assert bins["c"].categories == ("a", "b")  # 'rare' joins the other bin
        woe = woe_from_counts([1, 10], [100, 100])
        assert woe[1] > woe[0]
