"""The lab: real Debian 12 hosts on this machine (systemd-nspawn), its primary and its agents."""
