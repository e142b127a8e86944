"""medval.checklist."""
