"""The scikit-learn digits set: the bundled file's values, a fixed stratified split, standardised."""

import numpy as np
import pytest
import torch

from layerib.data.digits import load_digits
from layerib.data.registry import load_dataset
from layerib.errors import ConfigError


def test_the_split_is_fixed_stratified_and_holds_every_image_once():
    from sklearn.datasets import load_digits as sk_digits
    train, test = load_digits("train"), load_digits("test")
    assert (len(train), len(test)) == (1348, 449) and train.images.shape[1:] == (1, 8, 8)
    sk = sk_digits()
    # the union of the splits is scikit-learn's set: every image once, with its label
    ours = torch.cat([train.images, test.images]).flatten(1)
    ours = ours.numpy()  # standardisation is affine: min and max recover the raw 0..16
    raw = (ours - ours.min()) / (ours.max() - ours.min()) * 16
    key = lambda a, y: sorted(tuple(np.round(r).astype(int)) + (int(t),) for r, t in zip(a, y))
    assert key(raw, torch.cat([train.labels, test.labels]).numpy()) == key(sk.data, sk.target)
    # stratified: each class is 75 % +- one image in the training split
    for c in range(10):
        n_c = int((sk.target == c).sum())
        assert abs(int((train.labels == c).sum()) - 0.75 * n_c) <= 1
    # standardised with the training statistics; the same split at every call
    assert abs(train.images.mean().item()) < 1e-5 and abs(train.images.std().item() - 1) < 1e-3
    assert torch.equal(load_dataset("digits", "test").images, test.images)


def test_unknown_split_is_refused():
    with pytest.raises(ConfigError, match="unknown split 'val' for dataset 'digits'"):
        load_digits("val")
