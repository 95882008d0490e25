"""Ray Tune searches over the router and λ calibration (``router tune``)."""
