#!/bin/sh
# Managed by Ansible (role etcd): creates the users and the role, then enables
# authentication; idempotent. Passwords arrive on stdin (root's, then the lab
# user's) and reach etcdctl only through its environment, never its arguments.
# Prints one "auth: changed: ..." line per change, "auth: error: ..." on failure.
# Needs ETCDCTL_ENDPOINTS (and the TLS variables) plus LAB_USER, LAB_ROLE and
# LAB_PREFIXES (key prefixes separated by spaces) in the environment.
set -eu
IFS= read -r root_password
IFS= read -r lab_password
export ETCDCTL_USER=root ETCDCTL_PASSWORD="$root_password"
say() { echo "auth: $*"; }

# Before authentication is enabled the credentials are ignored; after, only
# the right root password can read the status.
enabled=$(etcdctl auth status 2>/dev/null | sed -n 's/^Authentication Status: //p')
if [ -z "$enabled" ]; then
  say "error: cannot read the authentication status (wrong etcd_root_password?)"
  etcdctl auth status >/dev/null
  exit 1
fi

if ! etcdctl user get root >/dev/null 2>&1; then
  printf '%s\n' "$root_password" | etcdctl user add root --interactive=false >/dev/null
  say "changed: user root added"
fi
if ! etcdctl user get root | grep -q '^Roles:.* root\b'; then
  etcdctl user grant-role root root >/dev/null
  say "changed: role root granted to root"
fi
if ! etcdctl role get "$LAB_ROLE" >/dev/null 2>&1; then
  etcdctl role add "$LAB_ROLE" >/dev/null
  say "changed: role $LAB_ROLE added"
fi
# Read and write on each prefix: `role get` lists a prefix once under each.
for prefix in $LAB_PREFIXES; do
  if [ "$(etcdctl role get "$LAB_ROLE" | grep -cF "(prefix $prefix)")" -lt 2 ]; then
    etcdctl role grant-permission "$LAB_ROLE" readwrite "$prefix" --prefix=true >/dev/null
    say "changed: readwrite on the prefix $prefix granted to role $LAB_ROLE"
  fi
done
if ! etcdctl user get "$LAB_USER" >/dev/null 2>&1; then
  printf '%s\n' "$lab_password" | etcdctl user add "$LAB_USER" --interactive=false >/dev/null
  say "changed: user $LAB_USER added"
fi
if ! etcdctl user get "$LAB_USER" | grep -q "^Roles:.* $LAB_ROLE\b"; then
  etcdctl user grant-role "$LAB_USER" "$LAB_ROLE" >/dev/null
  say "changed: role $LAB_ROLE granted to $LAB_USER"
fi
if [ "$enabled" != true ]; then
  etcdctl auth enable >/dev/null
  say "changed: authentication enabled"
fi
# The lab user's password can only be checked once authentication is on.
if ! ETCDCTL_USER="$LAB_USER" ETCDCTL_PASSWORD="$lab_password" \
    etcdctl get --keys-only --limit 1 "${LAB_PREFIXES%% *}" >/dev/null 2>&1; then
  printf '%s\n' "$lab_password" | etcdctl user passwd "$LAB_USER" --interactive=false >/dev/null
  say "changed: password of $LAB_USER set"
fi
