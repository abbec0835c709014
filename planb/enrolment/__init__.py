"""Handing enrolment codes to agents without the main system: letters, CSV export.

The sync (:mod:`planb.directory`) issues each active agent a one-time code and keeps
only its slow hash in the fallback directory, with the serial it was derived from
(:mod:`planb.enrolment_code`). This package reads the agents holding a live code from
the fallback directory (:mod:`.holders`), derives each code again from the site's
enrolment key, and renders what carries it to the agent: one printable A4 letter per
agent, grouped by department (:mod:`.letters`, printed to PDF by :mod:`.pdf`), or a
CSV for a mail-merge or SMS tool (:mod:`.export`).

Codes exist in memory and in the files the administrator asked for (mode 0600), never
in logs, journals, reports or exception messages.
"""
