"""The trainers' data order: each epoch a seeded permutation, a function of the position alone."""

import random

from rlreason.data_order import EpochOrder


def test_each_epoch_visits_every_item_once_in_the_seeded_order():
    order = EpochOrder(5, seed=3)
    first = [order.index(p) for p in range(5)]
    second = [order.index(p) for p in range(5, 10)]
    expected = list(range(5))
    random.Random(3 * 1_000_003 + 0).shuffle(expected)  # the documented seed of epoch 0
    assert first == expected and sorted(second) == list(range(5))
    assert second != first  # epoch 1 is shuffled anew


def test_the_order_depends_on_the_position_only_so_a_fresh_order_resumes_it():
    items = list("abcdefg")
    run = EpochOrder(7, seed=1)
    straight = run.take(items, 0, 12)
    resumed = EpochOrder(7, seed=1).take(items, 0, 5) + EpochOrder(7, seed=1).take(items, 5, 7)
    assert straight == resumed
