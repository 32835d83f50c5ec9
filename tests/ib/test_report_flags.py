"""The final report's flags of an I(X; L + eps) estimate against its Monte-Carlo truth."""

import math

from layerib.ib.report import mi_flags

LN_B = math.log(500)  # 6.21


def test_an_estimate_far_from_its_truth_is_flagged_whatever_the_truth():
    assert mi_flags(0.50, 0.52, LN_B, "dv") == []  # within 10 %
    assert mi_flags(0.30, 0.52, LN_B, "dv") == ["off_truth"]
    # a truth beyond ln B - 1 (here 9.2 nats, an MLP layer on CIFAR-10 at RMS 10 >> sigma):
    # a DV estimate of -31 nats is not left with "negative" alone
    assert mi_flags(-31.4, 9.18, LN_B, "dv") == ["negative", "truth_beyond_ln_batch"]
    assert mi_flags(9.0, 9.18, LN_B, "dv") == ["exceeds_ln_batch"]  # close to it: only that
    assert mi_flags(float("nan"), 0.5, LN_B, "dv") == ["non_finite"]
    assert mi_flags(0.3, None, LN_B, "dv") == []  # no truth, nothing to compare
