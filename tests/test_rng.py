"""The numpy reference of the mask spec (DESIGN.md section 1)."""

import numpy as np
import pytest
import torch

from dropkit import rng

KAT = [  # Random123 kat_vectors for philox4x32_10
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0xFFFFFFFF), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_philox_known_answers(ctr, key, expected):
    assert tuple(int(v) for v in rng.philox4x32(ctr, key)) == expected


def test_random_bits_follow_counter_and_lane_rule():
    seed, offset = 2**63 + 12345, 2**34 + 3
    bits = rng.random_bits(9, seed, offset)
    for i, r in enumerate(bits):
        g = offset + i
        b, lane = g >> 2, g & 3
        block = rng.philox4x32((b & 0xFFFFFFFF, b >> 32, 0, 0), (seed & 0xFFFFFFFF, seed >> 32))
        assert int(r) == int(block[lane])


def test_a_shard_gets_its_slice_of_the_stream():
    whole = rng.random_bits(1000, 7, 5)
    assert np.array_equal(rng.random_bits(333, 7, 5 + 400), whole[400:733])


def test_threshold_and_scale():
    assert rng.threshold(0.0) == 0
    assert rng.threshold(0.5) == 2**31
    assert rng.threshold(1.0) == 2**32
    assert rng.threshold(1e-10) == 0  # floor(0.43)
    assert rng.scale(0.3) == 1.0 / 0.7
    assert rng.scale(1.0) == 0.0


def test_keep_mask_reference_keeps_about_1_minus_p():
    m = rng.keep_mask((400, 500), 0.3, seed=1)
    assert abs(m.mean() - 0.7) < 4 * (0.3 * 0.7 / m.size) ** 0.5


def test_int64_round_trip_of_uint64():
    for u in (0, 1, 2**63 - 1, 2**63, 2**64 - 1):
        i = rng.to_int64(u)
        assert -(2**63) <= i < 2**63
        assert rng.to_uint64(i) == u


def test_draw_seed_is_64_bit_and_reproducible():
    g = torch.Generator().manual_seed(3)
    a = [rng.draw_seed(g) for _ in range(200)]
    g.manual_seed(3)
    assert a == [rng.draw_seed(g) for _ in range(200)]
    assert all(0 <= s < 2**64 for s in a)
    assert max(a) >= 2**63  # the high half is really drawn


def test_draw_seed_is_torch_randint_of_two_words_and_works_across_inference_mode():
    g = torch.Generator().manual_seed(5)
    lo, hi = torch.randint(0, 2**32, (2,), dtype=torch.int64, generator=g).tolist()
    g.manual_seed(5)
    with torch.inference_mode():  # the reused buffer must stay writable outside inference mode too
        first = rng.draw_seed(g)
    assert first == lo | (hi << 32)
    assert rng.draw_seed(g) != first
