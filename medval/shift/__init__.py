"""medval.shift."""
