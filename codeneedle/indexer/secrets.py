"""Files that are never indexed because they usually hold credentials.

Patterns use gitignore syntax and are matched against the path relative to the indexed root, so a
pattern without a slash matches a name at any depth. A match wins over every other rule: a
``.needleignore`` or ``.gitignore`` negation cannot re-include a secret. A setting can add patterns:
``IgnoreRules(root, secret_patterns=secret_patterns(extra))``, where a ``!`` line re-allows a default.
The README lists these defaults; keep the two in step.
"""

from __future__ import annotations

import re
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


# -- secrets by content ---------------------------------------------------------------------------------------
# Names catch the usual files; content catches the rest (deploy_key, ssh_host_rsa_key, kubeconfig, token.json,
# *-adminsdk-*.json, htpasswd, netrc, client.ovpn ... all hold a PEM/OpenSSH/PuTTY private key near the top).
PRIVATE_KEY_SNIFF_BYTES = 1024
_PRIVATE_KEY_HEAD = re.compile(rb"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY( BLOCK)?-----|PuTTY-User-Key-File-\d")


def holds_private_key(data: bytes) -> bool:
    """Whether the first KiB of a file holds the start of a private-key block (the file is then never indexed)."""
    return _PRIVATE_KEY_HEAD.search(data, 0, PRIVATE_KEY_SNIFF_BYTES) is not None


# Well-known token shapes, redacted in stored chunk text and in every snippet. Generic high-entropy strings and
# passwords in ordinary assignments are NOT caught (the README says so): their shape says nothing.
# The named group ``secret`` is what gets replaced; newlines inside it are kept, so line numbers still hold.
_TOKENS = re.compile("|".join((
    r"(?P<pk>-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----)(?P<pkbody>[\s\S]*?)"
    r"(?:(?P<pkend>-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----)|\Z)",
    r"(?P<awsid>\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA)[A-Z0-9]{16}\b)",
    r"(?P<awskey>(?i:aws[A-Za-z_\-]{0,20}secret[A-Za-z_\-]{0,20})[\"']?\s*[:=]\s*[\"']?)(?P<awssecret>[A-Za-z0-9/+=]{40})\b",
    r"(?P<gh>\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}\b|\bgithub_pat_[A-Za-z0-9_]{22,255}\b)",
    r"(?P<slack>\bxox[abposr]-[A-Za-z0-9-]{10,250})",
    r"(?P<hook>https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_-]{20,200})",
)))
_QUICK = re.compile(r"PRIVATE KEY|AKIA|ASIA|A[BCGINPR][A-Z]A|aws|AWS|gh[pousr]_|github_pat_|xox|hooks\.slack")


def _redacted(m: re.Match[str]) -> str:
    if m.group("pk"):
        body = m.group("pkbody") or ""
        return f"{m.group('pk')}[REDACTED private key]" + "\n" * body.count("\n") + (m.group("pkend") or "")
    if m.group("awsid"):
        return "[REDACTED aws-access-key-id]"
    if m.group("awssecret"):
        return m.group("awskey") + "[REDACTED aws-secret-access-key]"
    if m.group("gh"):
        return "[REDACTED github-token]"
    if m.group("slack"):
        return "[REDACTED slack-token]"
    return "[REDACTED slack-webhook]"


def redact_secrets(text: str) -> str:
    """``text`` with private-key blocks and AWS, GitHub and Slack tokens replaced by ``[REDACTED kind]``."""
    if not _QUICK.search(text):
        return text
    return _TOKENS.sub(_redacted, text)
