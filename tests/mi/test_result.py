"""``MIResult``: the old constructor, derived flags with reasons, ``to_dict`` and ``format``."""

from dataclasses import replace

from layerib.mi.protocol import MIResult as FromProtocol
from layerib.mi.result import MIResult


def _r(value, shuffled=None, bound="dv"):
    return MIResult(value=value, stderr=0.1, shuffled=shuffled, batch_size=128, ln_batch=4.852,
                    n_points=1024, n_batches=8, noise_var=None, bound=bound, exceeds_ln_batch=False)


def test_old_constructor_and_reexport():
    assert FromProtocol is MIResult
    r = _r(1.0, 0.0)
    assert r.flags == {} and r.interval is None and abs(r.low - 0.804) < 1e-9


def test_flags_are_derived_and_carry_reasons():
    assert set(_r(-0.2, 0.0).flags) == {"negative", "below_baseline"}
    assert set(_r(0.1, 0.3).flags) == {"below_baseline"}
    assert set(_r(5.0).flags) == {"exceeds_ln_batch", "near_ln_batch"}
    assert set(_r(4.0, bound="infonce").flags) == {"saturated"}
    r = replace(_r(1.0), value=-1.0)  # replace keeps them consistent
    assert r.negative and "no MI is" in r.flags["negative"] and "[-1.196, -0.804]" in r.flags["negative"]
    assert all(": " in line for line in r.reasons)


def test_to_dict_and_format_never_bare():
    r = replace(_r(-0.2, 0.0), interval=(-0.4, -0.01), critic="gauss", notes=("x",))
    d = r.to_dict()
    assert d["low"] == -0.4 and "negative" in d["flags"] and d["notes"] == ("x",)
    text = str(r)
    assert "[-0.400, -0.010]" in text and "ln B = 4.85" in text and "FLAGS: negative, below_baseline" in text


def test_label_result_shows_its_batch_and_why_it_has_no_ln_b_ceiling():
    text = str(replace(_r(1.0), critic="heads", bound="infonce"))
    assert "B = 128 (exact class marginal: no ln B ceiling; H(Y) bounds it)" in text
    assert "ln B =" not in text
    r = replace(_r(1.0), critic="heads", bound="infonce", entropy=2.302585)
    assert "H(Y) = 2.303 bounds it" in str(r) and not r.exceeds_entropy


def test_a_label_value_above_the_label_entropy_is_flagged():
    r = replace(_r(1.0), critic="heads", bound="dv", entropy=0.693147)
    assert r.exceeds_entropy and "H(Y) = 0.693" in r.flags["exceeds_entropy"]
    assert "FLAGS: exceeds_entropy" in str(r) and r.to_dict()["entropy"] == 0.693147
    assert not replace(r, entropy=None).exceeds_entropy


def test_negative_and_below_baseline_respect_the_interval():
    """Independent 10-d data gave -0.002 [-0.006, 0.002] with a baseline of -0.001: its interval
    holds 0 and the baseline, so neither flag is raised; an interval below them raises both."""
    r = replace(_r(-0.002, -0.001), stderr=0.002, interval=(-0.006, 0.002))
    assert not r.negative and not r.below_baseline and r.flags == {}
    r = replace(r, interval=(-0.006, -0.0015))
    assert r.negative and r.below_baseline
    assert "lies below the shuffled-pairs baseline -0.001" in r.flags["below_baseline"]
    assert not replace(r, interval=(-0.006, 0.0)).negative  # the interval's end at 0 holds it
    # without an interval: value +- 1.96 stderr decides
    assert not _r(-0.1).negative and _r(-0.3).negative
