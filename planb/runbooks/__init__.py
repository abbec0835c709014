"""Printable runbooks: Markdown + Jinja2 procedures filled with one site's values.

``catalog`` finds and renders the templates (shipped in ``planb/data/runbooks``,
overridable per site), ``values`` gathers the site's values, ``contacts`` builds the
crisis cell's phone list from the directory, ``html`` makes one printable page.
"""
