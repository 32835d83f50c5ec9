"""``layerib train``'s printed summary warns when the net does no better than the majority class."""

from layerib.cli.train import format_summary


def _res(acc, majority, method="ib"):
    return {"method": method, "dataset": "npz:x", "n_train": 400, "test_accuracy": acc,
            "wall_seconds": 1.0, "layers": [], "majority_accuracy": majority, "beta": 1.5,
            "beta_auto": True}


def test_warns_at_or_below_the_majority_rate_with_the_ib_hint():
    lines = format_summary(_res(0.30, 0.40))
    assert lines[1].startswith("WARNING: test accuracy 30.00% is not above the 40.00%")
    assert "smaller --beta (this run: 1.5 = 600 / N)" in lines[1]
    assert "--beta" not in format_summary(_res(0.40, 0.40, "ce"))[1]  # no IB hint for CE


def test_no_warning_above_it_or_for_older_results():
    assert len(format_summary(_res(0.41, 0.40))) == 1
    old = _res(0.1, 0.4)
    del old["majority_accuracy"]  # result.json of an older version
    assert len(format_summary(old)) == 1


def test_the_units_are_printed_where_they_fell():
    res = {**_res(0.9, 0.1), "units": ["Conv2d(1, 8, 3) + BatchNorm2d + ReLU + MaxPool2d", "Flatten + Linear(1352, 10)"]}
    lines = format_summary(res)
    assert lines[1:3] == ["unit 1: Conv2d(1, 8, 3) + BatchNorm2d + ReLU + MaxPool2d",
                          "unit 2: Flatten + Linear(1352, 10)"]



def _layer(i, mc, est, flags=(), reasons=None):
    d = {"index": i, "batch_size": 500, "output_rms": 1.0, "i_x_nats": est, "i_y_nats": 1.0,
         "i_x_monte_carlo_nats": mc, "i_x_monte_carlo_stderr": 0.01, "flags": list(flags),
         "i_x": {"value": est, "low": est - 0.1, "high": est + 0.1, "ln_batch": 6.21,
                 "critic": "mixture", "bound": "dv"},
         "i_y": {"value": 1.0, "low": 0.9, "high": 1.1}}
    if reasons is not None:
        d["flag_reasons"] = reasons
    return d


def test_the_monte_carlo_value_leads_and_flags_name_their_remedy():
    res = {**_res(0.9, 0.1), "noise_var": 1.0, "layers": [
        _layer(1, 5.118, -10.357, ["truth_beyond_ln_batch"],
               {"truth_beyond_ln_batch": "noise variance too small for B: ... raise --noise-var"}),
        _layer(2, 0.5, 0.49)]}
    lines = format_summary(res)
    head = lines[1]
    assert head.index("Monte-Carlo truth") < head.index("neural check") < head.index("I(Y;L)")
    row = lines[2].split()
    assert row[:3] == ["1", "5.118+-0.010", "-10.357"]  # Monte Carlo first, the neural check beside
    assert lines[-2:] == ["flags:", "  layer 1 truth_beyond_ln_batch: noise variance too small for "
                                    "B: ... raise --noise-var"]


def test_an_older_result_without_reasons_still_prints():
    res = {**_res(0.9, 0.1), "noise_var": 1.0, "layers": [_layer(1, 0.5, 0.3, ["off_truth"])]}
    lines = format_summary(res)
    assert lines[-1].endswith("off_truth") and "flags:" not in lines
