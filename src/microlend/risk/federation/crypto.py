"""Paillier (phe) on fixed-point integers: vectors encrypted and decrypted, sums of ciphertexts per bin,
plaintext shifts and scalings, and uniformly random masks modulo n (a masked value reveals nothing).

Ciphertexts travel as hexadecimal text; every plaintext is an integer (values scaled by 2**SCALE_BITS) so
that no ciphertext carries phe's floating exponent.

The owner of a key encrypts its own vectors (the bank its labels and residuals, the partner its partial scores)
with `OwnKey`: the random factor r**n mod n**2 is drawn modulo p**2 and q**2 and joined by the Chinese remainder
theorem, and a long vector is shared out over worker processes. Same ciphertexts' distribution as phe's
`raw_encrypt`, about 3.5 times less work each (2048-bit key), times the workers."""

from __future__ import annotations

import multiprocessing
import os
import secrets
import threading
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor

import numpy as np
from numpy.typing import NDArray
from phe import paillier
from phe.util import invert, mulmod, powmod

from microlend.core.errors import ValidationError

#: fixed-point scale of residuals and partial scores (values), and of WoE values (weights of a bin sum)
SCALE_BITS = 20
SCALE = 1 << SCALE_BITS
MIN_KEY_BITS = 512


def keypair(bits: int) -> tuple[paillier.PaillierPublicKey, paillier.PaillierPrivateKey]:
    if bits < MIN_KEY_BITS or bits % 256:
        raise ValidationError(f"key-bits: use a multiple of 256 of at least {MIN_KEY_BITS} (2048 in production)",
                              field="key-bits")
    pair: tuple[paillier.PaillierPublicKey, paillier.PaillierPrivateKey] = paillier.generate_paillier_keypair(
        n_length=bits)
    return pair


def public_key(n_hex: str) -> paillier.PaillierPublicKey:
    try:
        n = int(n_hex, 16)
    except ValueError:
        raise ValidationError("public key: not hexadecimal", field="public_key") from None
    if n.bit_length() < MIN_KEY_BITS - 8:
        raise ValidationError("public key: too short", field="public_key")
    return paillier.PaillierPublicKey(n)


def to_fixed(values: NDArray[np.float64]) -> list[int]:
    return [int(v) for v in np.rint(np.asarray(values, dtype=np.float64) * SCALE).astype(np.int64)]


def encrypt(pk: paillier.PaillierPublicKey, plaintexts: Sequence[int]) -> list[int]:
    """Each integer (negative ones as n - |v|) under `pk`, freshly obfuscated."""
    return [pk.raw_encrypt(int(v) % pk.n) for v in plaintexts]


#: vectors shorter than this, or under keys shorter than this, are encrypted in the calling process only
_POOL_MIN_VALUES = 256
_POOL_MIN_BITS = 1024
_pool: Executor | None = None
_pool_workers = 0
_pool_lock = threading.Lock()


def default_workers() -> int:
    """Processes an encryption is shared out over: the machine's cores, at most 2 unless set higher."""
    return max(1, min(2, os.cpu_count() or 1))


def _executor(workers: int) -> Executor:
    """One pool for the process (spawned workers: the caller may run threads, e.g. the partner's server)."""
    global _pool, _pool_workers
    with _pool_lock:
        if _pool is None or _pool_workers != workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
            _pool_workers = workers
        return _pool


def _random_unit(prime: int) -> int:
    """Uniform in the units of Z/prime**2."""
    square = prime * prime
    while True:
        x = secrets.randbelow(square - 1) + 1
        if x % prime:
            return x


def obfuscators(p: int, q: int, count: int) -> list[int]:
    """`count` fresh random factors r**n mod n**2 (n = pq), each drawn as (x**p mod p**2, y**q mod q**2) joined
    by CRT. The n-th residues mod n**2 are the product of the order-(p-1) subgroup mod p**2 (the p-th powers)
    and the order-(q-1) subgroup mod q**2, and x -> x**p maps the units of Z/p**2 evenly onto the first: so each
    factor is uniform over the n-th residues, as r**n is for r uniform in the units of Z/n."""
    p, q = int(p), int(q)
    p2, q2 = p * p, q * q
    join = int(invert(q2, p2))
    out = []
    for _ in range(count):
        a = powmod(_random_unit(p), p, p2)
        b = powmod(_random_unit(q), q, q2)
        out.append(int(b + q2 * mulmod(a - b, join, p2)))
    return out


class OwnKey:
    """A Paillier key pair used by its owner to encrypt its own values (see the module's note)."""

    def __init__(self, public: paillier.PaillierPublicKey, private: paillier.PaillierPrivateKey, *,
                 workers: int | None = None) -> None:
        self.public, self.private = public, private
        self.workers = default_workers() if workers is None else max(1, workers)

    def _factors(self, count: int) -> list[int]:
        p, q = int(self.private.p), int(self.private.q)
        if self.workers < 2 or count < _POOL_MIN_VALUES or self.public.n.bit_length() < _POOL_MIN_BITS:
            return obfuscators(p, q, count)
        # the workers draw their shares while this process draws its own
        shares = [count // self.workers + (1 if i < count % self.workers else 0) for i in range(self.workers)]
        futures = [_executor(self.workers - 1).submit(obfuscators, p, q, share) for share in shares[1:]]
        out = obfuscators(p, q, shares[0])
        for future in futures:
            out.extend(future.result())
        return out

    def encrypt(self, plaintexts: Sequence[int]) -> list[int]:
        """Each integer (negative ones as n - |v|), freshly obfuscated: (1 + n v) r**n mod n**2."""
        n, nsq = int(self.public.n), int(self.public.nsquare)
        factors = self._factors(len(plaintexts))
        return [int(mulmod((1 + n * (int(v) % n)) % nsq, r, nsq)) for v, r in zip(plaintexts, factors, strict=True)]

    def decrypt(self, ciphertexts: Sequence[int]) -> list[int]:
        return decrypt(self.private, ciphertexts)


def decrypt(sk: paillier.PaillierPrivateKey, ciphertexts: Sequence[int]) -> list[int]:
    """Integers in [0, n): still masked values, or signed values after `signed`."""
    return [sk.raw_decrypt(int(c)) for c in ciphertexts]


def signed(value: int, n: int) -> int:
    value %= n
    return value - n if value > n // 2 else value


def add_plain(pk: paillier.PaillierPublicKey, ciphertext: int, plaintext: int) -> int:
    """[[a]] -> [[a + b]] for a plaintext b (g = n + 1, so g**b = 1 + n*b mod n**2); no fresh randomness, so a
    result only leaves its owner after a random mask is added under encryption."""
    return int(mulmod(ciphertext, (1 + pk.n * (plaintext % pk.n)) % pk.nsquare, pk.nsquare))


def add(pk: paillier.PaillierPublicKey, a: int, b: int) -> int:
    return int(mulmod(a, b, pk.nsquare))


def times(pk: paillier.PaillierPublicKey, ciphertext: int, scalar: int) -> int:
    if scalar >= 0:
        return int(powmod(ciphertext, scalar, pk.nsquare))
    return int(powmod(invert(ciphertext, pk.nsquare), -scalar, pk.nsquare))


def encrypted_sum(pk: paillier.PaillierPublicKey, ciphertexts: Sequence[int]) -> int:
    total = 1  # the encryption of 0 with randomness 1
    for c in ciphertexts:
        total = mulmod(total, c, pk.nsquare)
    return total


def weighted_bin_sums(pk: paillier.PaillierPublicKey, ciphertexts: Sequence[int], bins: NDArray[np.intp],
                      weights: Sequence[int]) -> int:
    """[[sum_i weights[bins[i]] * x_i]] computed as sum over bins of weight * (sum of the bin's ciphertexts):
    one modular multiplication per row and one exponentiation per bin."""
    per_bin = [1] * len(weights)
    nsq = pk.nsquare
    for c, b in zip(ciphertexts, bins.tolist(), strict=True):
        per_bin[b] = mulmod(per_bin[b], c, nsq)
    total = 1
    for b, w in enumerate(weights):
        if w and per_bin[b] != 1:
            total = mulmod(total, times(pk, per_bin[b], w), nsq)
    return total


def random_mask(pk: paillier.PaillierPublicKey) -> int:
    return secrets.randbelow(int(pk.n))


def rerandomise(pk: paillier.PaillierPublicKey, ciphertext: int) -> int:
    """The same plaintext under fresh randomness: the ciphertext no longer shows how it was computed."""
    return int(mulmod(ciphertext, pk.raw_encrypt(0), pk.nsquare))


def mask(pk: paillier.PaillierPublicKey, ciphertext: int, r: int) -> int:
    """[[v]] -> [[v + r]] re-randomised, so the ciphertext itself carries nothing of how it was computed."""
    return int(mulmod(add_plain(pk, ciphertext, r), pk.raw_encrypt(0), pk.nsquare))


def to_hex(values: Sequence[int]) -> list[str]:
    return [format(int(v), "x") for v in values]


def from_hex(values: object, field: str) -> list[int]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValidationError(f"{field}: expected a list of hexadecimal ciphertexts", field=field)
    try:
        return [int(v, 16) for v in values]
    except ValueError:
        raise ValidationError(f"{field}: not hexadecimal", field=field) from None
