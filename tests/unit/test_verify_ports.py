"""The port-set comparison: what must listen, where, and nothing extra beyond loopback."""

from __future__ import annotations

from planb.verify.ports import Listener, compare, expected_rules, parse_ss

ALL_IN_ONE = ("fallback_directory", "fallback_messaging", "fallback_proxy")

# Real output of 'ss -Hlntu' on a deployed lab fallback (all three groups on one host).
SS_DEPLOYED = """\
udp UNCONN 0      0      10.77.21.11:3478 0.0.0.0:*
udp UNCONN 0      0      10.77.21.11:3478 0.0.0.0:*
tcp LISTEN 0      511        0.0.0.0:443  0.0.0.0:*
tcp LISTEN 0      511        0.0.0.0:80   0.0.0.0:*
tcp LISTEN 0      128        0.0.0.0:22   0.0.0.0:*
tcp LISTEN 0      2048       0.0.0.0:636  0.0.0.0:*
tcp LISTEN 0      2048     127.0.0.1:389  0.0.0.0:*
tcp LISTEN 0      50       127.0.0.1:8008 0.0.0.0:*
tcp LISTEN 0      1024   10.77.21.11:3478 0.0.0.0:*
tcp LISTEN 0      144      127.0.0.1:5432 0.0.0.0:*
tcp LISTEN 0      128           [::]:22      [::]:*
tcp LISTEN 0      2048          [::]:636     [::]:*
tcp LISTEN 0      144          [::1]:5432    [::]:*
"""


def test_parse_ss_reads_addresses_wildcards_and_zones() -> None:
    listeners = parse_ss(SS_DEPLOYED + "udp UNCONN 0 0 127.0.0.53%lo:53 0.0.0.0:*\n"
                         "tcp LISTEN 0 4096 *:9100 *:*\n")
    assert Listener("tcp", "*", 22) in listeners  # 0.0.0.0 and [::] both mean any
    assert Listener("tcp", "::1", 5432) in listeners
    assert Listener("udp", "127.0.0.53", 53) in listeners
    assert Listener("tcp", "*", 9100) in listeners
    assert len([ln for ln in listeners if ln.port == 3478]) == 2  # duplicates folded


def test_deployed_fallback_is_as_expected() -> None:
    result = compare(parse_ss(SS_DEPLOYED), expected_rules(ALL_IN_ONE))
    assert result.ok, result.describe()
    assert "443/tcp" in result.describe() and "8008" not in result.describe()


def test_loopback_only_port_exposed_fails() -> None:
    text = SS_DEPLOYED.replace("127.0.0.1:5432", "0.0.0.0:5432")
    result = compare(parse_ss(text), expected_rules(ALL_IN_ONE))
    assert not result.ok
    assert [(str(ln), rule.service) for ln, rule in result.exposed] == [
        ("*:5432/tcp", "postgresql")]
    assert "must listen on loopback only" in result.describe()


def test_extra_public_listener_fails_but_extra_loopback_is_tolerated() -> None:
    text = SS_DEPLOYED + "tcp LISTEN 0 5 0.0.0.0:6379 0.0.0.0:*\n" \
                         "udp UNCONN 0 0 127.0.0.53%lo:53 0.0.0.0:*\n"
    result = compare(parse_ss(text), expected_rules(ALL_IN_ONE))
    assert [str(ln) for ln in result.extra] == ["*:6379/tcp"]
    assert result.missing == () and result.exposed == ()


def test_missing_service_and_wrong_scope_are_missing() -> None:
    text = "\n".join(line for line in SS_DEPLOYED.splitlines() if ":8008" not in line)
    text = text.replace("0.0.0.0:636", "127.0.0.1:636").replace("[::]:636", "[::1]:636")
    result = compare(parse_ss(text), expected_rules(ALL_IN_ONE))
    assert sorted(rule.first for rule in result.missing) == [636, 8008]


def test_turn_relay_range_is_allowed_not_required() -> None:
    rules = expected_rules(["fallback_proxy"], {"coturn_min_port": "50000",
                                                "coturn_max_port": "50010"})
    base = "tcp LISTEN 0 5 0.0.0.0:22 0.0.0.0:*\ntcp LISTEN 0 5 0.0.0.0:443 0.0.0.0:*\n" \
           "tcp LISTEN 0 5 0.0.0.0:80 0.0.0.0:*\ntcp LISTEN 0 5 10.0.0.2:3478 0.0.0.0:*\n" \
           "udp UNCONN 0 0 10.0.0.2:3478 0.0.0.0:*\n"
    assert compare(parse_ss(base), rules).ok
    assert compare(parse_ss(base + "udp UNCONN 0 0 10.0.0.2:50005 0.0.0.0:*\n"), rules).ok
    assert not compare(parse_ss(base + "udp UNCONN 0 0 10.0.0.2:50011 0.0.0.0:*\n"), rules).ok


def test_rules_follow_the_host_groups() -> None:
    directory = {r.first for r in expected_rules(["fallback_directory"])}
    assert directory == {22, 636, 389}
    messaging = {r.first for r in expected_rules(["fallback_messaging"], {"synapse_port": 8448})}
    assert messaging == {22, 8448, 5432, 8008}  # 8008: the backend gate (split site)


# 'ss -Hlntu' on a split lab's messaging host: Synapse and PostgreSQL on the loopback,
# nginx's backend gate on the private address for the proxy host.
SS_SPLIT_MESSAGING = """tcp LISTEN 0      128        0.0.0.0:22   0.0.0.0:*
tcp LISTEN 0      50       127.0.0.1:8008 0.0.0.0:*
tcp LISTEN 0      511      10.77.5.13:8008 0.0.0.0:*
tcp LISTEN 0      144      127.0.0.1:5432 0.0.0.0:*
tcp LISTEN 0      128           [::]:22      [::]:*
"""


def test_split_messaging_host_expects_the_backend_gate_and_nothing_else_new() -> None:
    rules = expected_rules(["fallback", "fallback_messaging"])
    result = compare(parse_ss(SS_SPLIT_MESSAGING), rules)
    assert result.ok, result.describe()
    assert [r.service for r in rules if r.scope == "public"] == ["ssh", "nginx backend gate"]
    # Without the gate the proxy cannot reach Synapse: verify says so.
    no_gate = "\n".join(ln for ln in SS_SPLIT_MESSAGING.splitlines() if "10.77.5.13" not in ln)
    assert [r.service for r in compare(parse_ss(no_gate), rules).missing] == [
        "nginx backend gate"]
    # The rest still stays on the loopback: PostgreSQL beyond it is flagged.
    exposed = SS_SPLIT_MESSAGING.replace("127.0.0.1:5432", "0.0.0.0:5432")
    assert not compare(parse_ss(exposed), rules).ok


def test_one_host_fallback_expects_no_backend_gate() -> None:
    rules = expected_rules(ALL_IN_ONE)
    assert "nginx backend gate" not in {r.service for r in rules}
    # A gate listening on a one-host fallback would be an unexpected listener.
    text = SS_DEPLOYED + "tcp LISTEN 0 511 10.77.21.11:8008 0.0.0.0:*\n"
    result = compare(parse_ss(text), rules)
    assert [str(ln) for ln, _ in result.exposed] == ["10.77.21.11:8008/tcp"]


def test_postgresql_may_listen_on_the_private_address_only_with_a_standby() -> None:
    groups = ("fallback_directory", "fallback_messaging", "fallback_proxy")
    seen = parse_ss("tcp LISTEN 0 244 127.0.0.1:5432 0.0.0.0:*\n"
                    "tcp LISTEN 0 244 10.77.3.11:5432 0.0.0.0:*\n")
    alone = compare(seen, [r for r in expected_rules(groups) if r.first == 5432])
    assert [str(listener) for listener, _ in alone.exposed] == ["10.77.3.11:5432/tcp"]
    paired = compare(seen, [r for r in expected_rules(groups, standby=True) if r.first == 5432])
    assert paired.ok, paired.describe()
