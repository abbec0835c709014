"""What people read, in the site's language: catalogues, formats, overrides, same figures."""

from __future__ import annotations

import dataclasses
import html as html_text
import importlib.util
import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest
from babel.messages.pofile import read_po, write_po
from typer.testing import CliRunner

from planb.cli.main import app
from planb.config import LabConfig, SiteConfig, load_config
from planb.directory.snapshot import write_snapshot
from planb.drills.records import Finding
from planb.errors import ConfigError
from planb.i18n import Translator, site_catalogue
from planb.lab.site import write_lab_site
from planb.lab.topology import build_topology
from planb.messaging.announcement import AnnouncementContext, render_announcement
from planb.reports.keys import KeyPaths, init_keys
from planb.reports.render import render_report, render_trend
from tests.unit.test_drills_scenario import make_site
from tests.unit.test_failover_machine import Fallback, machine
from tests.unit.test_reports_render_model import doc_of, drill_payload, signed_store, write_drills
from tests.unit.test_reports_render_model import site as site  # noqa: F401 (fixture)
from tests.unit.test_runbooks_render import lab_agents

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
SCRIPT = '<script>alert("pwned")</script>'


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("planb_i18n_tool", ROOT / "tools" / "i18n.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["planb_i18n_tool"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    return _tool()


# -- the catalogues ---------------------------------------------------------------------

def test_catalogues_hold_every_message_translated_and_compiled(tool: ModuleType) -> None:
    """Every msgid the code and templates use is in fr and en; fr's are all translated
    (none empty or fuzzy); each shipped .mo says what its .po says."""
    assert tool.problems() == []
    used = tool.used_messages()
    assert len(used) > 300  # the reports, the runbooks, the contact sheet, the findings


def _edit(po: Path, change: object) -> None:
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=po.parts[-3])
    change(catalog)  # type: ignore[operator]
    with po.open("wb") as handle:
        write_po(handle, catalog, width=0)


@pytest.mark.parametrize("fault", ["empty", "fuzzy", "missing", "stale"])
def test_the_catalogue_check_names_each_fault(tool: ModuleType, tmp_path: Path,
                                              fault: str) -> None:
    locale = tmp_path / "locale"
    shutil.copytree(tool.LOCALE, locale)
    po = tool.po_path("fr", locale)
    msgid = "Who to call"

    def empty(catalog: object) -> None:
        catalog[msgid].string = ""  # type: ignore[index]

    def fuzzy(catalog: object) -> None:
        catalog[msgid].flags.add("fuzzy")  # type: ignore[index]

    def missing(catalog: object) -> None:
        del catalog[msgid]  # type: ignore[attr-defined]

    def stale(catalog: object) -> None:
        catalog[msgid].string = "Qui appeler d'abord"  # type: ignore[index]

    _edit(po, {"empty": empty, "fuzzy": fuzzy, "missing": missing, "stale": stale}[fault])
    if fault != "stale":  # the others are compiled, so only the .po is at fault
        tool.compile_all.__globals__["LOCALE"] = locale
        try:
            tool.compile_all()
        finally:
            tool.compile_all.__globals__["LOCALE"] = tool.ROOT / "planb" / "data" / "locale"
    found = tool.problems(locale)
    expected = {"empty": "untranslated msgid 'Who to call'", "fuzzy": "fuzzy msgid 'Who to call'",
                "missing": "missing msgid 'Who to call'", "stale": "out of date"}[fault]
    assert any(expected in p and "fr" in p for p in found), found


# -- formats ----------------------------------------------------------------------------

def test_french_dates_numbers_and_durations() -> None:
    fr = Translator("fr")  # Europe/Paris
    assert fr.when("2026-11-29T20:46:00Z", precise=False) == \
        "29 novembre 2026 à 21:46 UTC+01:00"
    assert fr.when("2026-07-14T08:00:00.250Z") == "14 juillet 2026 à 10:00:00,250 UTC+02:00"
    assert fr.seconds(40.8) == "40,8 s" and fr.seconds(125) == "125 s (2 min 5 s)"
    assert f"{fr.integer(9000)} agents" == "9\u202f000 agents"
    assert fr.size(12.3 * 1024 * 1024) == "12,3 Mio"
    assert fr.month("2026-11-30T23:30:00Z") == "décembre 2026"  # Paris is already there
    assert fr.when("2025-03-01T08:30:00Z", precise=False) == "1er mars 2025 à 09:30 UTC+01:00"
    en = Translator("en")  # today's English: UTC, the journal's own digits
    assert en.when("2026-11-29T20:46:00.123Z") == "2026-11-29 20:46:00.123 UTC"
    assert en.seconds(40.8) == "40.8 s" and en.integer(9000) == "9,000"
    assert Translator("en", "Europe/Paris").when("2026-11-29T20:46:00Z", precise=False) == \
        "2026-11-29 21:46 UTC+01:00"


# -- reports ----------------------------------------------------------------------------

_FR_DATE = re.compile(r"\d{1,2}(er)? (janvier|février|mars|avril|mai|juin|juillet|août|septembre|"
                      r"octobre|novembre|décembre) \d{4}( à \d{2}:\d{2}(:\d{2}(,\d+)?)?)?"
                      r"( UTC([+-]\d{2}:\d{2})?)?")
_EN_DATE = re.compile(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2}(:\d{2}(\.\d+)?)?)?( UTC([+-]\d{2}:\d{2})?)?")
_CLOCK = re.compile(r"\b\d{2}:\d{2}:\d{2}[.,]\d{3}\b")
_FR_MONTH = re.compile(r"(janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre|"
                       r"novembre|décembre) \d{4}")
_EN_MONTH = re.compile(r"\b\d{4}-\d{2}\b")
_DAY = re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{2}-\d{2}\b")  # the charts' axis labels
_NUMBER = re.compile(r"\d+(?:[\u202f\u00a0 ]\d{3})*(?:[.,]\d+)?")


def figures(text: str, language: str) -> Counter[float]:
    """The numbers a reader sees, dates, times, hashes, ids and file names left out."""
    text = html_text.unescape(re.sub(r"<style>.*?</style>|<[^>]+>", " ", text, flags=re.S))
    text = re.sub(r"`[^`]*`", " ", text)  # code: commands, file names, hashes
    text = re.sub(r"\S*[0-9a-f]{8,}\S*|\S+\.(json|yml)\b|agent-\w+|d-\d{4}-\d{2}-\d{2}"
                  r"|planb \d+\.\d+\.\d+|SHA-?256|sha256|\d+\.\d+\.\d+", " ", text)
    text = (_FR_DATE if language == "fr" else _EN_DATE).sub(" ", text)
    text = _DAY.sub(" ", text)
    text = (_FR_MONTH if language == "fr" else _EN_MONTH).sub(" ", text)
    text = _CLOCK.sub(" ", text)
    found: Counter[float] = Counter()
    for number in _NUMBER.findall(text):
        plain = re.sub(r"[\u202f\u00a0 ]", "", number)
        found[float(plain.replace(",", ".") if language == "fr" else plain)] += 1
    return found


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_french_and_english_exports_carry_the_same_figures(site: SiteConfig, fmt: str) -> None:
    journals = write_drills(site)
    for journal in journals:
        doc = doc_of(journal)
        english = render_report(fmt, doc, (), Translator("en", "UTC"))
        french = render_report(fmt, doc, (), Translator("fr", "UTC"))
        assert "Drill report" in english and "Rapport d" in french
        assert figures(french, "fr") == figures(english, "en")
        assert figures(english, "en")[75.5] or journal.seq != 2  # the deviated drill's RTO
    docs = [doc_of(j) for j in journals]
    assert figures(render_trend(docs, Translator("fr", "UTC")), "fr") == \
        figures(render_trend(docs, Translator("en", "UTC")), "en")


def test_french_report_names_what_french_auditors_name(site: SiteConfig) -> None:
    text = html_text.unescape(render_report("html", doc_of(write_drills(site)[1]),
                                            (), Translator("fr")))
    assert '<html lang="fr">' in text
    for words in ("Rapport d'exercice", "DMIA", "Périmètre", "Objectifs et résultats",
                  "Chronologie", "Constats", "Recommandations et plan d'actions",
                  "Signature et chaînage", "75,5 s", "ÉCART", "NON ATTEINT",
                  "15 mars 2025 à 10:00:00,000 UTC+01:00"):
        assert words in text, words
    for english in ("Drill report", "Objectives and outcome", "none recorded", "PASS"):
        assert english not in text, english


def test_json_and_junit_stay_english_whatever_the_language(site: SiteConfig) -> None:
    doc = doc_of(write_drills(site)[1])
    for fmt in ("json", "junit"):
        assert render_report(fmt, doc, (), Translator("fr")) == render_report(fmt, doc)


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_hostile_journal_text_stays_escaped_in_french(site: SiteConfig, fmt: str) -> None:
    payload = drill_payload(site, output=f"boom {SCRIPT}")
    payload["operator"] = SCRIPT
    payload["findings"] = [{"kind": "deviated", "message": SCRIPT,
                            "template": "activation failed: %(why)s",
                            "values": {"why": SCRIPT}}]
    stored = signed_store(site).append("drill", payload)
    text = render_report(fmt, doc_of(stored), (), Translator("fr"))
    assert "l'activation a échoué" in html_text.unescape(text)
    if fmt == "md":  # text in fenced blocks; escaped everywhere else
        outside = re.sub(r"(`{3,})text\n.*?\n\1\n", "", text, flags=re.S)
        assert "<script>" not in outside and r"\<script\>" in outside
    else:
        assert SCRIPT not in text and "&lt;script&gt;" in text


def test_drill_findings_are_translated_from_their_template(site: SiteConfig) -> None:
    finding = Finding("deviated", "RTO 75.5 s exceeds the objective of 60 s",
                      "RTO %(rto)s s exceeds the objective of %(objective)s s",
                      {"rto": 75.5, "objective": 60})
    payload = drill_payload(site)
    payload["findings"] = [finding.record()]
    doc = doc_of(signed_store(site).append("drill", payload))
    assert "durée de reprise de 75,5 s au-delà de la DMIA de 60 s" in \
        render_report("md", doc, (), Translator("fr"))
    assert "RTO 75.5 s exceeds the objective of 60 s (drill finding (deviated))" in \
        render_report("md", doc)


def test_a_site_catalogue_entry_wins_over_planbs(site: SiteConfig) -> None:
    po = site_catalogue(site.base_dir, "fr")
    po.parent.mkdir(parents=True)
    po.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
                  'msgid "Drill trend"\nmsgstr "Tableau de bord des exercices du PCA"\n',
                  encoding="utf-8")
    docs = [doc_of(j) for j in write_drills(site)]
    page = render_trend(docs, dataclasses.replace(site, language="fr").translator())
    assert "Tableau de bord des exercices du PCA" in page
    assert "Tendance des exercices" not in page
    assert "Taux de réussite" in page  # every other message is still planb's French
    assert "Tendance des exercices" in render_trend(docs, Translator("fr"))


# -- the site's language ----------------------------------------------------------------

def test_language_in_planb_yml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    assert runner.invoke(app, ["init", str(tmp_path / "new")]).exit_code == 0
    config = tmp_path / "new" / "planb.yml"
    made = load_config(config)
    assert made.language == "fr" and made.timezone == "Europe/Paris"
    assert made.translator().language == "fr"
    # A planb.yml from before 'language:' changes nothing: English documents (UTC),
    # a French announcement.
    text = config.read_text(encoding="utf-8")
    old = config.with_name("old.yml")
    old.write_text(re.sub(r"\nlanguage: fr\n|\ntimezone: Europe/Paris\n", "\n", text),
                   encoding="utf-8")
    before = load_config(old)
    assert before.language is None and before.document_language == "en"
    assert before.announcement_language == "fr"
    assert before.translator().timezone_name == "UTC"
    for bad, key in (("language: de", "language"), ("timezone: Mars/Olympus", "timezone")):
        broken = config.with_name("broken.yml")
        broken.write_text(re.sub(rf"\n{key}: .*\n", f"\n{bad}\n", text), encoding="utf-8")
        with pytest.raises(ConfigError) as error:
            load_config(broken)
        assert key in error.value.message or key in str(error.value), error.value


def test_the_announcement_follows_the_language(site: SiteConfig) -> None:
    context = AnnouncementContext("29 novembre 2026 à 21:46 UTC+01:00", "abc")
    assert site.language is None  # an older site: French, as it always was
    assert render_announcement(site, context).startswith("# Messagerie de secours activée")
    english = render_announcement(dataclasses.replace(site, language="en"), context)
    assert english.startswith("# Fallback messaging activated") and "abc" in english


# -- runbooks ---------------------------------------------------------------------------

RUNBOOKS = ("activate-failover", "deactivate-failover", "run-drill", "rebuild-fallback",
            "rotate-signing-key", "crisis-contacts")
#: Words of English prose: none may be left in a French runbook outside its commands.
ENGLISH = re.compile(r"\b(the|and|you|when|with|Check|Done|Steps|before|after|every)\b")


@pytest.fixture
def french_lab_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PLANB_CONFIG", raising=False)
    lab = LabConfig(subnet="10.77.9.0/24", bridge="planb9", split=True)
    config = write_lab_site(tmp_path / "site", build_topology(lab.subnet, lab.bridge,
                                                              split=True), tmp_path / "key", lab)
    write_snapshot(lab_agents(), tmp_path / "site" / "agents.json")
    return config


def _runbook(config: Path, name: str, *extra: str) -> str:
    args = ["-c", str(config), "runbook", "render", name, *extra]
    if name == "crisis-contacts":
        args += ["--from-snapshot", str(config.parent / "agents.json")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("name", RUNBOOKS)
def test_every_runbook_is_french_on_a_french_site_and_english_on_request(
        french_lab_site: Path, name: str) -> None:
    french = _runbook(french_lab_site, name)
    prose = re.sub(r"```.*?```|`[^`]*`", " ", french, flags=re.S)
    prose = re.sub(r"the lab primary|snapshot \S+ of|taken \S+", " ", prose)  # the source's own
    assert not ENGLISH.findall(prose), sorted(set(ENGLISH.findall(prose)))
    assert "{{" not in french and "%(" not in french
    if name != "crisis-contacts":
        assert "DMIA" in french and "Imprimé le " in french and "UTC+0" in french
    english = _runbook(french_lab_site, name, "--language", "en")
    assert ENGLISH.search(english) and "DMIA" not in english
    page = _runbook(french_lab_site, name, "--format", "html")
    assert '<html lang="fr">' in page and "fiche réflexe" in page


def test_a_site_catalogue_entry_wins_in_runbooks_too(french_lab_site: Path) -> None:
    po = site_catalogue(french_lab_site.parent, "fr")
    po.parent.mkdir(parents=True)
    po.write_text('msgid "Who to call"\nmsgstr "Numéros d\'urgence du site"\n', encoding="utf-8")
    text = _runbook(french_lab_site, "activate-failover")
    assert "## Numéros d'urgence du site" in text and "## Qui appeler" not in text
    assert "## Avant de commencer" in text


def test_report_commands_follow_the_sites_language(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """On a site 'planb init' made (French), export and trend are French; --language en
    gives the English ones."""
    monkeypatch.setenv("PLANB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PLANB_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["init", "site"]).exit_code == 0
    assert runner.invoke(app, ["keys", "init"]).exit_code == 0
    site = load_config(tmp_path / "site" / "planb.yml")
    write_drills(site)
    for args, french, english in (
            (["report", "export", "2", "--format", "md"], "# Rapport d'exercice",
             "# Drill report"),
            (["report", "trend"], "Tendance des exercices", "Drill trend")):
        shown = runner.invoke(app, args)
        assert shown.exit_code == 0, shown.output
        assert french in html_text.unescape(shown.output) and "UTC+01:00" in shown.output
        again = runner.invoke(app, [*args, "--language", "en"])
        assert again.exit_code == 0 and english in again.output
    wrong = runner.invoke(app, ["report", "trend", "--language", "de"])
    assert wrong.exit_code == 2 and "use one of en, fr" in wrong.output


def test_failover_report_and_its_warnings_in_french(tmp_path: Path) -> None:
    """A real activation whose announcement is not built yet: its journal's warning is
    kept in English and shown in French, with the words of the switch."""
    failover_site = make_site(tmp_path)
    init_keys(KeyPaths.for_state_dir(failover_site.state_dir), None)
    fallback = Fallback()
    fallback.announce_built = False
    done = machine(failover_site, fallback).activate("incident")
    assert done.warnings == ("announce unavailable: not available yet: needs planb.messaging",)
    assert done.journal is not None
    doc = doc_of(done.journal)
    french = html_text.unescape(render_report("md", doc, (), Translator("fr")))
    assert "# Rapport de bascule : activation" in french
    assert "veille → actif" in french
    assert "announce unavailable : not available yet: needs planb.messaging (avertissement)" \
        in french
    english = render_report("md", doc)
    assert "announce unavailable: not available yet: needs planb.messaging (warning)" in english
