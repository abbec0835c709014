"""``planb bundle``: build, show and verify the offline bundle the roles install from."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from planb.cli.context import console, err_console, print_json
from planb.errors import PlanbError

# planb.bundle (its builder reaches the lab image, apt and pip): imported where a command
# runs, so 'planb --help' stays quick.
if TYPE_CHECKING:
    from planb.bundle import BuildResult, Manifest

app = typer.Typer(
    help="The offline bundle: every Debian package and Python wheel the playbooks install, "
    "so a deploy needs no internet. Built once on the controller, shipped to each host.",
    no_args_is_help=True,
)

DirOption = Annotated[
    Path | None,
    typer.Option("--dir", "-d", metavar="DIR", file_okay=False,
                 help="The bundle's folder (default: $PLANB_HOME/bundles/current)."),
]


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


@app.command("build")
def build(
    bundle_dir: DirOption = None,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Rebuild even if the inputs did not change "
                           "(picks up new Debian security updates and wheel releases)."),
    ] = False,
    json_output: Annotated[bool, typer.Option(
        "--json", help="Print the result as JSON (progress still goes to stderr).")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", file_okay=False,
                                                hidden=True)] = None,
) -> None:
    """Build the bundle from playbooks/bundle/debs.txt and synapse-requirements.in.

    Debian packages come from bookworm (+ updates, security) with exactly the
    dependencies the lab image lacks; wheels are made for the hosts' CPython 3.11.
    Needs root (it mounts an overlay of the lab image), Debian's python3 with pip,
    and libpq-dev + python3-dev (psycopg2 is built here). A second build with the
    same inputs does nothing.
    """
    from planb.bundle import build_bundle

    shown = err_console if json_output else console
    started = time.monotonic()
    stage: list[tuple[str, float]] = []

    def finish_stage() -> None:
        if stage:
            name, at = stage.pop()
            took = time.monotonic() - at
            shown.print(f"  [green]done[/] {escape(name)} [dim]({took:.1f} s)[/]",
                        highlight=False)

    with shown.status("building the bundle…") as status:
        def progress(message: str) -> None:
            finish_stage()
            stage.append((message, time.monotonic()))
            status.update(f"{message}… [dim]({time.monotonic() - started:.0f} s)[/]")

        # --output/-o: the option's name before 'bundle show' and 'verify' took --dir.
        result = build_bundle(bundle_dir or output, refresh=refresh, progress=progress)
        finish_stage()
    if json_output:
        print_json({**_summary(result.path, result.manifest), "rebuilt": result.rebuilt,
                    "duration_s": round(result.duration_s, 3)})
    else:
        _print_result(result)


def _print_result(result: BuildResult) -> None:
    from planb.bundle import ARCHIVE_NAME
    from planb.bundle.client import manifest_version

    m = result.manifest
    what = "built" if result.rebuilt else "up to date (same inputs; --refresh rebuilds)"
    console.print(
        f"bundle {m.bundle_id} {what} in {result.duration_s:.1f} s\n"
        f"  {result.path}\n"
        f"  {m.count('deb')} Debian packages, {m.count('wheel')} wheels, "
        f"{_mib(m.size)} ({ARCHIVE_NAME}: {_mib(result.archive_size)})\n"
        f"  browser client: {manifest_version(m) or 'none'}",
        highlight=False, soft_wrap=True)


def _summary(path: Path, manifest: Manifest) -> dict[str, object]:
    from planb.bundle import ARCHIVE_NAME
    from planb.bundle.client import manifest_version

    archive = path / ARCHIVE_NAME
    return {
        "bundle_id": manifest.bundle_id,
        "path": str(path),
        "created": manifest.created,
        "debs": manifest.count("deb"),
        "wheels": manifest.count("wheel"),
        "client": manifest_version(manifest),
        "files": len(manifest.items),
        "size_bytes": manifest.size,
        "archive": str(archive) if archive.is_file() else None,
        "archive_size_bytes": archive.stat().st_size if archive.is_file() else None,
    }


@app.command("show")
def show(
    bundle_dir: DirOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the bundle's id, what it holds and its size."""
    from planb.bundle import default_output, load_manifest

    path = (bundle_dir or default_output()).resolve()
    manifest = load_manifest(path)
    summary = _summary(path, manifest)
    if json_output:
        print_json(summary)
        return
    table = Table(show_header=False, box=None)
    for key, value in summary.items():
        if key.endswith("size_bytes") and isinstance(value, int):
            value = f"{_mib(value)} ({value} bytes)"
        table.add_row(key.replace("_", " "), str(value))
    console.print(table)


@app.command("verify")
def verify_cmd(
    bundle_dir: DirOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Re-hash every file against the manifest; exit 1 naming each file that differs."""
    from planb.bundle import ARCHIVE_NAME, default_output, load_manifest, verify

    path = (bundle_dir or default_output()).resolve()
    manifest = load_manifest(path)
    problems = verify(path, manifest, extra_ok=(ARCHIVE_NAME,))
    if json_output:
        print_json({"bundle_id": manifest.bundle_id, "ok": not problems,
                    "checked": len(manifest.items),
                    "problems": [{"file": p.file, "reason": p.reason} for p in problems]})
    elif not problems:
        console.print(f"bundle {manifest.bundle_id}: all {len(manifest.items)} files match "
                      "the manifest", highlight=False)
    if problems:
        if not json_output:
            for problem in problems:
                err_console.print(f"{problem.file}: {problem.reason}", highlight=False)
        raise PlanbError(f"bundle {manifest.bundle_id} at {path}: {len(problems)} file(s) do "
                         "not match the manifest",
                         hint="rebuild it with 'planb bundle build --refresh'")
