"""Domain layer: incremental, time-windowed market indicators (strategy.md §2), O(1) amortised."""
