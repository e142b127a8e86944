"""medval.uncertainty."""
