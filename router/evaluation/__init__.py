"""RouterBench-style evaluation: λ sweeps, NDCH/AIQ metrics, reference points, the eval runner."""
