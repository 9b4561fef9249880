"""Pure numbers shared by analysis and report: statistics, units, clock and lease arithmetic."""
