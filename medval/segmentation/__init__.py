"""medval.segmentation: per-case overlap, boundary and lesion metrics of masks.

Pure numpy and scipy (no torch, no pydicom): arrays in, per-case numbers out.
"""

from __future__ import annotations

__all__: list[str] = []
