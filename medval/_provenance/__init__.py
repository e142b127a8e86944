"""Provenance facts recorded in every result: versions, platform, command, git commit.

The git commit is read from the repository's files (``_git.py``); no
external program runs.
"""

from __future__ import annotations

from medval._provenance._env import (
    _NUMERIC_ENV,
    command_line,
    environment_fingerprint,
    file_sha256,
    package_versions,
    platform_summary,
)
from medval._provenance._git import git_commit

__all__ = [
    "_NUMERIC_ENV",
    "command_line",
    "environment_fingerprint",
    "file_sha256",
    "git_commit",
    "package_versions",
    "platform_summary",
]
