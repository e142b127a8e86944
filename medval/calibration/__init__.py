"""medval.calibration."""
