"""``planb init DIR``: start a new site."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planb import state
from planb.cli.context import console, print_json

app = typer.Typer()


@app.command("init")
def init(
    directory: Annotated[Path, typer.Argument(help="Folder of the new site (created if needed).")],
    site: Annotated[str, typer.Option(help="Short site name; inventory in inventories/<site>/.")]
    = "production",
    organisation: Annotated[str, typer.Option(help="Organisation name shown to agents.")]
    = "My administration",
    server_name: Annotated[str, typer.Option(help="Matrix server name (user IDs end with it).")]
    = "example.org",
    public_hostname: Annotated[str, typer.Option(help="Host name agents' clients connect to.")]
    = "matrix.example.org",
    language: Annotated[str, typer.Option(
        help="The site's 'language:' (fr or en): of its exported reports, trend page, "
        "runbooks, contact sheet and announcements.")] = "fr",
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Write a commented planb.yml and inventories/<site>/ for a new site.

    The vault (inventories/<site>/group_vars/all/vault.yml) gets CHANGE-ME
    placeholders: set real secrets and encrypt it with ansible-vault before
    deploying. Existing files are never overwritten unless --force is given.

    planb checks the hosts' SSH keys, which it cannot read yet: once the hosts are
    installed, record them with 'planb hosts trust' (or 'planb deploy
    --trust-new-hosts') and compare the fingerprints with the hosts' consoles.
    """
    from planb.site_init import SiteSpec, write_site  # jinja2: loaded on use

    spec = SiteSpec(site=site, organisation=organisation, server_name=server_name,
                    public_hostname=public_hostname, language=language)
    written = write_site(spec, directory, force=force)
    # Validate what was just written, so a bad --site or name fails here, not later.
    from planb.config import load_config

    load_config(directory / "planb.yml")
    state.set_current_site(directory / "planb.yml")
    if json_output:
        print_json({"site": site, "config": str((directory / "planb.yml").resolve()),
                    "written": [str(path) for path in written]})
        return
    for path in written:
        console.print(f"wrote {path}", highlight=False)
    console.print(
        f"Next: edit {directory / 'planb.yml'} and the inventory, put secrets in the vault, "
        "then, once the hosts are installed, 'planb hosts trust' (compare the fingerprints "
        "with the hosts' consoles) and 'planb deploy'.", highlight=False,
    )
