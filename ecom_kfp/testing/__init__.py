"""Real servers on loopback for tests, benchmarks and the local demo (no mocks)."""
