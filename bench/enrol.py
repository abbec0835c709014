"""Benchmark enrolment codes and letters for a large site (9,000 synthetic agents).

    /work/main/.venv/bin/python /work/main/bench/enrol.py [--agents 9000] [--pdf]

Offline: no lab needed (the agents are planb.lab's synthetic ones, the same for the
same seed; the key is a throw-away one).

- codes: every agent is issued a code as the sync does when it applies a plan
  (planb.directory.enrolment.hash_issues: derive, scrypt-hash, in a process pool of one
  worker per core); the time, codes/s, next to a plain one-process loop of hash_code
  over a sample measured in the same run (the pool's rate as a multiple of it: aim
  >= 0.6x per core). Every agent must get exactly one hash, and a sample must verify
  against its derived code (exit status 4 when not, or when the aim is missed);
- letters: the letters of every agent rendered to one HTML document (derive each code
  again, group by department, escape, translate; planb.enrolment): time and size,
  next to a plain f-string letter per agent (no grouping, escaping or translation)
  measured in the same run (aim: <= 3x of it, < 60 s, < 8 KiB a letter; exit status
  5 when missed); with --pdf, the whole document printed by Chromium: time, size,
  pages (aim: one A4 page a letter, and one a department or more for a long roster);
- with --config <lab site>/planb.yml: enrolments per second through the page
  (:func:`enrolment_rate`: a rush of --enrolments agents at once next to a plain loop
  with 4 in flight, on a deployed, synced lab; exit status 6 when an enrolment was
  refused or the rush ran below 0.8x the loop). It spends those agents' codes.

    /work/main/.venv/bin/python bench/enrol.py --enrol-only -c <lab site>/planb.yml

Exit status 1 when the benchmark cannot run.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from planb.config import CsvSourceConfig, MatrixConfig, PrimaryConfig, SiteConfig, load_config
from planb.directory.enrolment import hash_issues
from planb.directory.enrolment_plan import CodeIssue
from planb.enrolment.codes import Addresses, Letter, letters_for
from planb.enrolment.holders import Holder
from planb.enrolment.letters import render_letters
from planb.enrolment_code import derive_code, format_code, hash_code, verify_code
from planb.lab.agents import generate
from planb.welcome import qr_svg

#: The exit status when codes missed their aim (an agent without a code, or too slow).
EXIT_CODES_MISSED = 4
#: The exit status when the letters missed their aim.
EXIT_LETTERS_MISSED = 5
#: The exit status when enrolments through the page were refused or too slow.
EXIT_ENROL_MISSED = 6
#: Codes hashed one by one for the baseline, and verified after the pool.
SAMPLE = 40
AIM_POOL_PER_CORE = 0.6
AIM_LETTERS_RATIO = 3.0
AIM_LETTERS_SECONDS = 60.0
AIM_LETTER_BYTES = 8 * 1024
#: Logins a department's cover page lists at least (two columns of A4).
ROSTER_PER_PAGE = 70
STORED = re.compile(r"^\$scrypt\$ln=14,r=8,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$")


def bench_site(folder: Path) -> SiteConfig:
    """A French site with the lab's names (nothing is deployed)."""
    site = SiteConfig(site="bench", organisation="Métropole de Bench",
                      matrix=MatrixConfig("planb.lab", "matrix.planb.lab"),
                      primary=PrimaryConfig(kind="csv", csv=CsvSourceConfig(Path("a.csv"))),
                      language="fr")
    import dataclasses

    return dataclasses.replace(site, source=folder / "planb.yml")


def holders(count: int) -> list[Holder]:
    """``count`` synthetic agents holding code number 1, valid a year."""
    until = datetime.now(UTC) + timedelta(days=365)
    return [Holder(source_id=a.entry_uuid, login=a.login, name=a.display_name,
                   department=a.department.name, mail=a.mail, mobile=a.mobile, serial=1,
                   expires=until) for a in generate(count)]


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def plain_rate(sample: list[Holder], key: bytes) -> tuple[float, float]:
    """Codes/s of a plain one-process loop of derive + hash_code over ``sample``, and the
    CPU milliseconds a code took (what a busy machine does not change much)."""
    t0, cpu0 = time.monotonic(), time.process_time()
    for h in sample:
        hash_code(derive_code(key, h.source_id, 1))
    return (len(sample) / (time.monotonic() - t0),
            1000 * (time.process_time() - cpu0) / len(sample))


def children_cpu() -> float:
    """CPU seconds used so far by this process's finished children (the pool's workers)."""
    import resource

    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def bench_codes(agents: list[Holder], key: bytes) -> list[str]:
    """Issue every agent a code through the sync's pool; the misses (empty: aim met)."""
    misses: list[str] = []
    before, cpu_before = plain_rate(agents[:SAMPLE], key)
    issues = [CodeIssue(h.source_id, h.login, 1) for h in agents]
    expires = "20991231000000Z"
    cores = os.cpu_count() or 1
    t0, cpu0 = time.monotonic(), children_cpu()
    issued = hash_issues(key, issues, expires)
    load = os.getloadavg()[0]
    took = time.monotonic() - t0
    pool_cpu = 1000 * (children_cpu() - cpu0) / max(1, len(issued))
    rate = len(issued) / took
    after, cpu_after = plain_rate(agents[SAMPLE:2 * SAMPLE], key)
    serial_rate = (before + after) / 2
    without = [h.login for h in agents if not STORED.match(
        getattr(issued.get(h.source_id), "stored", "") or "")]
    wrong = [h.login for h in agents[-SAMPLE:]
             if h.source_id in issued and not verify_code(
                 derive_code(key, h.source_id, 1), issued[h.source_id].stored)]
    print(f"codes    plain loop of hash_code, one process ({SAMPLE} codes before the pool "
          f"and {SAMPLE} after): {before:.1f} and {after:.1f} codes/s", flush=True)
    aim = AIM_POOL_PER_CORE * cores
    print(f"codes    issued for {len(agents)} agents through the sync's pool ({cores} "
          f"core(s)): {took:.1f} s, {rate:.1f} codes/s = {ratio(rate, serial_rate)} the "
          f"plain loop (aim >= {aim:.1f}x; load average after: {load:.1f})", flush=True)
    print(f"codes    CPU a code: {pool_cpu:.0f} ms in the pool, {cpu_before:.0f} and "
          f"{cpu_after:.0f} ms in the plain loop (a busy machine slows the wall clock, not "
          "this)", flush=True)
    print(f"codes    agents without a code: {len(without)}; sample of {SAMPLE} not "
          f"verifying: {len(wrong)}", flush=True)
    if without:
        misses.append(f"{len(without)} agent(s) without a code (first: {without[0]})")
    if wrong:
        misses.append(f"{len(wrong)} code(s) that do not verify against their hash")
    if rate < aim * serial_rate:
        misses.append(f"the pool ran at {ratio(rate, serial_rate)} the plain loop, "
                      f"below {aim:.1f}x")
    return misses


def plain_letters(site: SiteConfig, letters: list[Letter]) -> str:
    """The baseline: one f-string letter per agent, no grouping, escaping or catalogue."""
    addresses = Addresses.of(site)
    qr = qr_svg(addresses.enrol, addresses.enrol)
    return "".join(
        f"<section><h1>Votre accès</h1><p>{x.name}</p><p>{x.department}</p>"
        f"<p>{x.login}</p><p>{x.code}</p><p>{x.expires}</p>{qr}"
        f"<p>{addresses.enrol}</p><p>{addresses.welcome}</p></section>" for x in letters)


def bench_letters(site: SiteConfig, agents: list[Holder], key: bytes, pdf: bool
                  ) -> list[str]:
    """Render every agent's letter (and print them with --pdf); the misses."""
    misses: list[str] = []
    t0 = time.monotonic()
    baseline = plain_letters(site, [Letter(h.login, h.name, h.department,
                                           format_code(derive_code(key, h.source_id, 1)),
                                           1, h.expires) for h in agents])
    plain = time.monotonic() - t0
    t0 = time.monotonic()
    book = render_letters(site, letters_for(agents, key))
    took = time.monotonic() - t0
    size = len(book.html.encode())
    per_letter = size / max(1, book.letters)
    print(f"letters  plain f-string letter per agent: {plain:.2f} s, "
          f"{len(baseline.encode()) / 2**20:.1f} MiB", flush=True)
    print(f"letters  {book.letters} letters in {book.departments} departments rendered "
          f"(derive, group, escape, translate): {took:.2f} s = {ratio(took, plain)} the "
          f"plain one (aim <= {AIM_LETTERS_RATIO:.0f}x, < {AIM_LETTERS_SECONDS:.0f} s); "
          f"HTML {size / 2**20:.1f} MiB, {per_letter / 1024:.1f} KiB a letter "
          f"(aim < {AIM_LETTER_BYTES // 1024} KiB)", flush=True)
    if took > AIM_LETTERS_SECONDS or took > AIM_LETTERS_RATIO * plain:
        misses.append(f"letters took {took:.1f} s ({ratio(took, plain)} the plain one)")
    if per_letter > AIM_LETTER_BYTES:
        misses.append(f"{per_letter / 1024:.1f} KiB a letter")
    if pdf:
        from planb.enrolment.pdf import print_pdf

        with tempfile.TemporaryDirectory(prefix="planb-bench-") as tmp:
            out = Path(tmp) / "letters.pdf"
            t0 = time.monotonic()
            print_pdf(book.html, out)
            printed = time.monotonic() - t0
            pages = len(re.findall(rb"/Type\s*/Page[^s]", out.read_bytes()))
            least = book.letters + book.departments
            most = least + book.letters // ROSTER_PER_PAGE
            print(f"letters  PDF by Chromium: {printed:.1f} s, "
                  f"{out.stat().st_size / 2**20:.1f} MiB, {pages} pages (aim: {least} to "
                  f"{most}: one a letter, one a department or more for a long roster)",
                  flush=True)
            if not least <= pages <= most:
                misses.append(f"the PDF has {pages} pages, not {least} to {most}")
    return misses


# --- enrolments per second through the page (needs a lab) ------------------------------


def _post_enrolment(site: SiteConfig, address: str, login: str, code: str, password: str,
                    success: str) -> tuple[bool, float, str]:
    """One POST /enrol/submit through nginx at ``address``: (enrolled?, seconds, why not)."""
    import http.client
    import socket
    from urllib.parse import urlencode

    from planb.enrol_page import SUBMIT_PATH
    from planb.verify.endpoints import tls_context

    body = urlencode({"login": login, "code": code, "password": password,
                      "password2": password}).encode()
    name = site.matrix.public_hostname
    t0 = time.monotonic()
    try:
        with socket.create_connection((address, 443), 120) as plain, \
                tls_context(site).wrap_socket(plain, server_hostname=name) as tls:
            tls.sendall((f"POST {SUBMIT_PATH} HTTP/1.1\r\nHost: {name}\r\n"
                         "Connection: close\r\nContent-Type: "
                         "application/x-www-form-urlencoded\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
            answer = http.client.HTTPResponse(tls, method="POST")
            answer.begin()
            text = answer.read(1 << 20).decode("utf-8", "replace")
    except OSError as exc:
        return False, time.monotonic() - t0, type(exc).__name__
    took = time.monotonic() - t0
    if answer.status == 200 and success in text:
        return True, took, ""
    return False, took, f"HTTP {answer.status}"


def _run(site: SiteConfig, address: str, accounts: list[tuple[str, str, str]],
         in_flight: int, success: str) -> tuple[float, list[float], list[str]]:
    """Every account enrols, ``in_flight`` at a time: (wall seconds, latencies, errors)."""
    from concurrent.futures import ThreadPoolExecutor

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        results = list(pool.map(
            lambda a: _post_enrolment(site, address, a[0], a[1], a[2], success), accounts))
    wall = time.monotonic() - start
    return wall, [s for ok, s, _ in results if ok], [e for ok, _, e in results if not ok]


def _strong(password: str) -> bool:
    kinds = (any(c.islower() for c in password), any(c.isupper() for c in password),
             any(c.isdigit() for c in password), any(not c.isalnum() for c in password))
    return len(password) >= 12 and sum(kinds) >= 3


def enrolment_rate(site: SiteConfig, n: int) -> list[str]:
    """Enrolments per second through https://<public_hostname>/enrol/submit (the misses).

    On a deployed, synced lab with enrolment on (standby is enough): ``n`` agents holding
    a live code enrol all at once through nginx (the site's CA), then ``n`` others
    through a plain loop with 4 in flight, measured in the same run; the rate of each,
    p95, and the rush's rate as a multiple of the loop's (aim: >= 0.8x; compare with
    bench/drill.py's login storm). Each agent sets the lab's own password for them
    (planb.lab.agents.agent_password), so logins still work afterwards; their codes are
    spent ('planb enrol reissue' gives new ones).
    """
    from planb.enrol_page import SUCCESS
    from planb.enrolment.source import read_batch
    from planb.lab.agents import agent_password
    from planb.verify.probes import fallback_address

    secret = (site.state_dir / "lab" / "agents-secret").read_bytes().strip()
    success = site.translator(site.announcement_language)._(SUCCESS)
    accounts = [(x.login, x.code, agent_password(secret, x.login))
                for x in read_batch(site).letters]
    accounts = [a for a in accounts if _strong(a[2]) and a[0] not in a[2]][:2 * n]
    if len(accounts) < 2 * n:
        return [f"only {len(accounts)} agents hold a live code, {2 * n} needed"]
    address = fallback_address(site)
    rush_wall, rush, rush_errors = _run(site, address, accounts[:n], min(n, 200), success)
    loop_wall, loop, loop_errors = _run(site, address, accounts[n:], 4, success)
    rush_rate, loop_rate = len(rush) / rush_wall, len(loop) / loop_wall
    for name, wall, ok, errors, rate in (("rush", rush_wall, rush, rush_errors, rush_rate),
                                          ("loop", loop_wall, loop, loop_errors, loop_rate)):
        p95 = sorted(ok)[int(0.95 * (len(ok) - 1))] if ok else float("nan")
        print(f"enrol    {name}: {len(ok)}/{n} enrolled in {wall:.1f} s = {rate:.1f}/s, "
              f"p95 {p95:.2f} s; refused {len(errors)} {sorted(set(errors))[:3]}",
              flush=True)
    print(f"enrol    the rush ran at {ratio(rush_rate, loop_rate)} the plain loop "
          "(aim >= 0.8x); compare with bench/drill.py's login storm", flush=True)
    misses = []
    if rush_errors or loop_errors:
        misses.append(f"{len(rush_errors) + len(loop_errors)} enrolment(s) refused")
    if rush_rate < 0.8 * loop_rate:
        misses.append(f"the rush ran at {ratio(rush_rate, loop_rate)} the plain loop")
    return misses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=9000)
    parser.add_argument("--pdf", action="store_true", help="also print the letters to PDF")
    parser.add_argument("--config", "-c", type=Path, metavar="PLANB_YML",
                        help="a deployed, synced lab site: also measure enrolments/s "
                             "through the page (spends 2 x --enrolments codes)")
    parser.add_argument("--no-codes", action="store_true",
                        help="skip issuing codes (minutes): letters only")
    parser.add_argument("--enrolments", type=int, default=100)
    parser.add_argument("--enrol-only", action="store_true",
                        help="only the enrolment rate (with --config)")
    args = parser.parse_args(argv)
    code_misses: list[str] = []
    letter_misses: list[str] = []
    enrol_misses: list[str] = []
    if not args.enrol_only:
        key = secrets.token_bytes(32)
        agents = holders(args.agents)
        print(f"bench    {len(agents)} synthetic agents, "
              f"{len({h.department for h in agents})} departments; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} core(s)", flush=True)
        with tempfile.TemporaryDirectory(prefix="planb-bench-site-") as tmp:
            site = bench_site(Path(tmp))
            code_misses = [] if args.no_codes else bench_codes(agents, key)
            letter_misses = bench_letters(site, agents, key, args.pdf)
    if args.config is not None:
        enrol_misses = enrolment_rate(load_config(args.config.resolve()), args.enrolments)
    else:
        print("enrol    enrolments per second through the page: not measured (give a "
              "deployed lab site with --config)", flush=True)
    for miss in code_misses + letter_misses + enrol_misses:
        print(f"MISSED   {miss}", flush=True)
    if code_misses:
        return EXIT_CODES_MISSED
    if letter_misses:
        return EXIT_LETTERS_MISSED
    return EXIT_ENROL_MISSED if enrol_misses else 0


if __name__ == "__main__":
    sys.exit(main())
