"""Small shared pieces: the optimiser (:mod:`~layerib.utils.optim`), RNG state (:mod:`~layerib.utils.rng`)."""
