"""Files that are never indexed because they usually hold credentials.

Patterns use gitignore syntax and are matched against the path relative to the indexed root, so a
pattern without a slash matches a name at any depth. A match wins over every other rule: a
``.needleignore`` or ``.gitignore`` negation cannot re-include a secret. A setting can add patterns:
``IgnoreRules(root, secret_patterns=secret_patterns(extra))``, where a ``!`` line re-allows a default.
The README lists these defaults; keep the two in step.
"""

from __future__ import annotations

from collections.abc import Iterable

DEFAULT_SECRET_PATTERNS: tuple[str, ...] = (
    # dotenv files and direnv
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    # private keys, certificates bundles and key stores
    "*.pem",
    "*.key",
    "*.p8",
    "*.p12",
    "*.pfx",
    "*.ppk",
    "*.keystore",
    "*.jks",
    "*.kdbx",
    "*.kdb",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    # per-user credential stores of package managers and tools
    ".npmrc",
    ".pypirc",
    ".netrc",
    "_netrc",
    ".pgpass",
    ".git-credentials",
    ".dockercfg",
    ".htpasswd",
    "**/.docker/config.json",
    "**/.aws/credentials",
    ".ssh/",
    ".gnupg/",
    # cloud / service credential files
    "credentials*.json",
    "*secret*.json",
    "*secret*.yaml",
    "*secret*.yml",
    "*secret*.toml",
    "service-account*.json",
    "service_account*.json",
    # terraform state and variables routinely contain plaintext secrets
    "*.tfstate",
    "*.tfstate.*",
    "*.tfvars",
)


def secret_patterns(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The default secret patterns followed by ``extra`` (for example from user settings)."""
    return DEFAULT_SECRET_PATTERNS + tuple(p for p in extra if p and p.strip())
