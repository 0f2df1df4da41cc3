"""Problems with exact answers, for tests and benchmarks."""
