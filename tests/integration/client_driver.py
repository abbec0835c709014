"""How a test drives planb's browser client (Hydrogen at https://<public_hostname>/app/).

For Playwright pages opened with :func:`tests.integration.agent_browser.browse`. The
selectors are Hydrogen 0.3.1's own (hydrogen-view-sdk), and planb's banner:

- start page: ``header.planb-banner`` (live state, the address for apps), then
  Hydrogen in ``#planb-client``; the login form has ``#username``, ``#password`` and
  ``.PasswordLoginView button[type=submit]`` (no homeserver field: it is hidden,
  prefilled from ``/app/config.json``);
- after login: ``.SessionView``; the rooms are ``.RoomList li a`` and each name is in
  ``.RoomList .description .name``; an open room's name is ``.middle-header h2``;
- the composer is ``.MessageComposer_input textarea`` (Enter sends); a message is a
  ``li.Timeline_message`` whose text is in ``.Timeline_messageBody``, and one the
  server took has a ``data-event-id`` starting with ``$`` (a pending one has a local id).
"""

from __future__ import annotations

from tests.integration.agent_browser import Browsing

#: Login and first sync of a fresh browser profile (olm is loaded, keys uploaded).
LOGIN_TIMEOUT_MS = 120_000
ROOM_NAMES = ".RoomList .description .name"


def client_login(b: Browsing, url: str, login: str, password: str) -> None:
    """Open ``url`` (``https://<public_hostname>/app/``), log in, wait for the rooms."""
    b.page.goto(url)
    b.page.wait_for_selector("#username")
    b.page.fill("#username", login)
    b.page.fill("#password", password)
    b.page.click(".PasswordLoginView button[type=submit]")
    b.page.wait_for_selector(".SessionView", timeout=LOGIN_TIMEOUT_MS)
    b.page.wait_for_selector(ROOM_NAMES, timeout=LOGIN_TIMEOUT_MS)


def room_names(b: Browsing) -> list[str]:
    """The names in the room list, as shown."""
    return [name.strip() for name in b.page.locator(ROOM_NAMES).all_inner_texts()]


def open_room(b: Browsing, name: str) -> None:
    """Click the room called ``name`` in the list and wait until it is open."""
    b.page.locator(".RoomList li a", has_text=name).first.click()
    b.page.locator(".middle-header h2", has_text=name).wait_for()
    b.page.wait_for_selector(".MessageComposer_input textarea")


def post(b: Browsing, text: str) -> None:
    """Type ``text`` in the open room's composer, send it, and wait until the server
    has it (the message's id is the server's event id, not a local one)."""
    box = b.page.locator(".MessageComposer_input textarea")
    box.fill(text)
    box.press("Enter")
    sent = b.page.locator("li.Timeline_message[data-event-id^='$']", has_text=text)
    sent.first.wait_for(timeout=60_000)
