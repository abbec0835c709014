"""Signed, hash-chained journals: keys, the store, verification (rendering comes later).

- :mod:`planb.reports.canonical`: canonical JSON bytes (what is hashed and signed).
- :mod:`planb.reports.keys`: the site's Ed25519 key pair, passphrases, fingerprints.
- :mod:`planb.reports.journal`: the envelope and file naming.
- :mod:`planb.reports.store`: :class:`JournalStore` (append, list, get).
- :mod:`planb.reports.verify`: verification with only public keys.
- :mod:`planb.reports.trust`: which keys a verification trusts (pins, rotation journals).
- :mod:`planb.reports.anchor`: each new head logged to the controller's system log.
- :mod:`planb.reports.repair`: sign a journal an interrupted write left unsigned, on record.
- :mod:`planb.reports.summary`: scenario / status / RTO for listings.
"""
