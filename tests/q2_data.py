"""A pytest fixture for the q2_transfer tests: every built-in image split is generated once per
session (the sets are deterministic) and can be shrunk, so that in-process runs stay fast."""

import pytest

import q2_transfer.train
from common.data.images import load_images

_LOADED = {}


def _cached(name, root, split, download=False, size=None):
    if (name, split, size) not in _LOADED:
        _LOADED[name, split, size] = load_images(name, root, split, download=download, size=size)
    return _LOADED[name, split, size]


@pytest.fixture
def cached_images(monkeypatch):
    """q2_transfer.train loads the built-in sets at their default sizes, from the cache."""
    monkeypatch.setattr(q2_transfer.train, "load_images",
                        lambda name, root, split, download=False: _cached(name, root, split, download))


@pytest.fixture
def short_test_images(monkeypatch):
    """q2_transfer.train loads the default built-in train sets and half-size test sets (1000
    builtin100 images, 10 per class; 500 builtin10 images), cached."""
    test_sizes = {"builtin100": 1000, "builtin10": 500}
    monkeypatch.setattr(q2_transfer.train, "load_images",
                        lambda name, root, split, download=False: _cached(
                            name, root, split, download, test_sizes[name] if split == "test" else None))


def use_small_images(monkeypatch):
    """Make q2_transfer.train load 1000-image train and 200-image test built-in sets, cached."""
    sizes = {"train": 1000, "test": 200}
    monkeypatch.setattr(q2_transfer.train, "load_images",
                        lambda name, root, split, download=False: _cached(name, root, split, download,
                                                                          sizes[split]))


@pytest.fixture
def small_images(monkeypatch):
    use_small_images(monkeypatch)
