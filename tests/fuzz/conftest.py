"""Print the number of fuzz cases run per entry point at the end of the session."""


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    counts = getattr(config, "_qlearn_fuzz_counts", None)
    if not counts:
        return
    tr = terminalreporter
    tr.section("fuzz cases per entry point")
    for name, (cases, seconds) in sorted(counts.items()):
        tr.write_line(f"{cases:7d}  {seconds:7.1f} s  {name}")
    tr.write_line(f"{sum(c for c, _ in counts.values()):7d}  total")
