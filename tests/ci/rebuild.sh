#!/usr/bin/env bash
# A CI pipeline's rebuild of a RabbitMQ environment, as a pipeline author would write it:
# write an inventory with `hactl init`, edit it, build with `hactl up --json`, take the
# endpoints with `eval "$(hactl endpoints ...)"`, check AMQP through them, tear down with
# `hactl reset --yes`. Any failing step fails the script (set -e).
#
# Every --json output and the --events stream are left in $WORK for tests/ci_rebuild.rs to
# check against the schema. Run by tests/ci_rebuild.rs against a 5-host lab. Environment:
#   HACTL            the hactl binary
#   WORK             a scratch directory (the inventory and reports go there)
#   LAB_SUBNET       the lab's first three octets, e.g. 10.213.0
#   LAB_STATE        the lab's state directory (its SSH key and known_hosts)
#   AMQP_ROUND_TRIP  a program that publishes and consumes through $HACTL_AMQP_URL
set -euo pipefail
: "${HACTL:?}" "${WORK:?}" "${LAB_SUBNET:?}" "${LAB_STATE:?}" "${AMQP_ROUND_TRIP:?}"
inv=$WORK/inventory.yaml
step() { echo "== ci: $*"; }

secret() { head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9'; }
export HACTL_COOKIE HACTL_APP_PASSWORD HACTL_VRRP_PASSWORD HACTL_STATS_PASSWORD
HACTL_COOKIE=$(secret)$(secret)
HACTL_APP_PASSWORD=$(secret)
HACTL_VRRP_PASSWORD=$(secret)
HACTL_STATS_PASSWORD=$(secret)

step "init"
n=$LAB_SUBNET
"$HACTL" init "$inv" --cluster ci-rebuild \
	--nodes "node1=$n.11,node2=$n.12,node3=$n.13" --lbs "node4=$n.14,node5=$n.15" \
	--vip "$n.100/24" --interface eth0 --identity-file "$LAB_STATE/id_ed25519" --json >"$WORK/init.json"

step "edit: the lab's known_hosts; the script check for HAProxy (no process connector in the lab)"
sed -i -e "s|^  port: 22$|  port: 22\n  known_hosts: $LAB_STATE/known_hosts|" \
	-e "s|^  virtual_router_id: \(.*\)$|  virtual_router_id: \1\n  haproxy_check: script|" "$inv"
grep -q "known_hosts: $LAB_STATE/known_hosts" "$inv"
grep -q "^  haproxy_check: script$" "$inv"
"$HACTL" validate "$inv"

step "up"
"$HACTL" up "$inv" --json --events "$WORK/up.events" >"$WORK/up.json"
grep -q '"outcome":"ok"' "$WORK/up.json"

step "endpoints"
eval "$("$HACTL" endpoints "$inv" --with-password)"
[[ $HACTL_AMQP_URL == amqp://app:*@$n.100:5672/%2F ]]

step "AMQP round trip through $HACTL_AMQP_HOST"
"$AMQP_ROUND_TRIP"

step "reset"
"$HACTL" reset "$inv" --yes --json >"$WORK/reset.json"
grep -q '"outcome":"ok"' "$WORK/reset.json"
step "done"
