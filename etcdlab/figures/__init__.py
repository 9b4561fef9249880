"""Pure numbers shared by analysis and report: statistics, units and clock arithmetic."""
