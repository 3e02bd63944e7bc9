#!/usr/bin/env bash
# Debian packages the minicloud runs (its own RabbitMQ and MariaDB instances on private ports;
# the system services themselves are neither started nor configured).
set -euo pipefail
need=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need+=(rabbitmq-server)
# the journal's tests run against PostgreSQL too: a cluster of the tests' own (initdb, postgres),
# started by the tests on loopback; Debian's own cluster is neither started nor used
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# observability tests: promtool checks the metrics textfile, a loopback Pushgateway receives a
# push, headless Chromium renders the HTML report (none of their services is started)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-pushgateway >/dev/null 2>&1 || [ -x /usr/bin/prometheus-pushgateway ] || need+=(prometheus-pushgateway)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d 101: do not start the system's own mariadb/rabbitmq/postgresql/prometheus services on install.
tmp=$(mktemp); printf '#!/bin/sh\nexit 101\n' > "$tmp"; chmod +x "$tmp"
had_policy=0; [ -e /usr/sbin/policy-rc.d ] && had_policy=1
[ $had_policy -eq 1 ] || $SUDO cp "$tmp" /usr/sbin/policy-rc.d
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
[ $had_policy -eq 1 ] || $SUDO rm -f /usr/sbin/policy-rc.d
rm -f "$tmp"
