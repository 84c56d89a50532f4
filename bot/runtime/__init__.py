"""Starting, watching and stopping the three processes (`make run`, tests, benchmarks)."""
