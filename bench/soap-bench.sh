#!/usr/bin/env bash
# SOAP stack benchmark (not a test): vcds vs a minimal gSOAP C server, same machine, same run.
#
# Both answer the same SOAP 1.1 WS-Addressing request
#   wsrf-rp:GetResourceProperty(vcds:Description) with header vcds:ResourceId
# with <wsrf-rp:GetResourcePropertyResponse><vcds:Description>bench</vcds:Description></...>.
#   - baseline: a gSOAP 2.8 C server built here (soapcpp2 -c, wsaapi plugin, one thread per
#     keep-alive connection, at most 128), 127.0.0.1 only;
#   - vcds: `vcds serve` (release build: target/release/vcds, built with
#     `cargo build --release -p vcds` when missing), on a System created through the Portal whose
#     vcds:Description was set to "bench" with SetResourceProperties.
# Load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION with a Lua script POSTing the envelope.
# Prints requests/s and p99 latency of both, and the ratio vcds/gSOAP.
#
# Usage: bench/soap-bench.sh            env: VCDS_BIN, DURATION (10s), THREADS (2), CONNECTIONS (64),
#                                            WARMUP (2s; 0 to skip), KEEP_TMP=1
# Needs: gcc, soapcpp2 + libgsoap-dev (stdsoap2.h, libgsoap), wrk, curl, xmllint, cargo (if no build).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION="${DURATION:-10s}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
WARMUP="${WARMUP:-2s}"
VCDS_BIN="${VCDS_BIN:-$ROOT/target/release/vcds}"
RERUN="bench/soap-bench.sh   # from $ROOT; env DURATION=$DURATION THREADS=$THREADS CONNECTIONS=$CONNECTIONS VCDS_BIN=$VCDS_BIN"

for tool in gcc soapcpp2 wrk curl xmllint; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y gsoap libgsoap-dev wrk curl libxml2-utils gcc)" >&2; exit 2; }
done
[ -f /usr/include/stdsoap2.h ] || { echo "missing stdsoap2.h: apt-get install -y libgsoap-dev" >&2; exit 2; }
GSOAP_SHARE=/usr/share/gsoap
[ -f "$GSOAP_SHARE/plugin/wsaapi.c" ] || { echo "missing $GSOAP_SHARE/plugin/wsaapi.c (Debian gsoap)" >&2; exit 2; }

TMP="$(mktemp -d /tmp/vcds-bench.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
  done
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'; }
wait_port() { # port pid name
  for _ in $(seq 1 300); do
    kill -0 "$2" 2>/dev/null || { echo "$3 exited during start-up; log:" >&2; cat "$TMP/$3.log" >&2; exit 1; }
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$3 did not listen on 127.0.0.1:$1" >&2; exit 1
}

# ---------------------------------------------------------------- gSOAP baseline server
mkdir -p "$TMP/gsoap"
cat >"$TMP/gsoap/bench.h" <<'EOF'
//gsoap wsrp schema namespace: http://docs.oasis-open.org/wsrf/rp-2
//gsoap wsrp schema form: qualified
//gsoap vcds schema namespace: urn:vcds:2026
//gsoap vcds schema form: qualified
//gsoap wsrp service name: bench
//gsoap wsrp service style: document
//gsoap wsrp service encoding: literal
//gsoap wsrp service method-action: GetResourceProperty http://docs.oasis-open.org/wsrf/rpw-2/GetResourceProperty/GetResourcePropertyRequest
//gsoap wsrp service method-output-action: GetResourceProperty http://docs.oasis-open.org/wsrf/rpw-2/GetResourceProperty/GetResourcePropertyResponse
#import "wsa5.h"
struct SOAP_ENV__Header { char *vcds__ResourceId; };
typedef char *_wsrp__GetResourceProperty;
struct _wsrp__GetResourcePropertyResponse { char *vcds__Description; };
int __wsrp__GetResourceProperty(_wsrp__GetResourceProperty wsrp__GetResourceProperty, struct _wsrp__GetResourcePropertyResponse *wsrp__GetResourcePropertyResponse);
EOF
cat >"$TMP/gsoap/server.c" <<'EOF'
/* Minimal multi-threaded gSOAP baseline: WSRF GetResourceProperty (SOAP 1.1, doc/literal,
   WS-Addressing 1.0 via the wsaapi plugin) answering a fixed vcds:Description element.
   One thread per keep-alive connection, at most MAX_THR at a time; 127.0.0.1 only. */
#include "soapH.h"
#include "bench.nsmap"
#include "wsaapi.h"
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THR 128
static sem_t slots;

int __wsrp__GetResourceProperty(struct soap *soap, char *qname,
                                struct _wsrp__GetResourcePropertyResponse *resp)
{
  const char *local = qname ? strchr(qname, ':') : NULL;
  local = local ? local + 1 : qname;
  if (soap->header)
    soap->header->vcds__ResourceId = NULL; /* do not echo the reference parameter */
  if (!local || strcmp(local, "Description"))
    return soap_sender_fault(soap, "InvalidResourcePropertyQName", NULL);
  if (soap_wsa_check(soap))
    return soap->error;
  resp->vcds__Description = "bench";
  return soap_wsa_reply(soap, NULL,
    "http://docs.oasis-open.org/wsrf/rpw-2/GetResourceProperty/GetResourcePropertyResponse");
}

/* one-way fault messages addressed to this server (wsa5.h declares the operation): ignore */
int SOAP_ENV__Fault(struct soap *soap, char *faultcode, char *faultstring, char *faultactor,
                    struct SOAP_ENV__Detail *detail, struct SOAP_ENV__Code *SOAP_ENV__Code,
                    struct SOAP_ENV__Reason *SOAP_ENV__Reason, char *SOAP_ENV__Node,
                    char *SOAP_ENV__Role, struct SOAP_ENV__Detail *SOAP_ENV__Detail)
{
  (void)faultcode; (void)faultstring; (void)faultactor; (void)detail; (void)SOAP_ENV__Code;
  (void)SOAP_ENV__Reason; (void)SOAP_ENV__Node; (void)SOAP_ENV__Role; (void)SOAP_ENV__Detail;
  return soap_send_empty_response(soap, SOAP_OK);
}

static void *serve(void *arg)
{
  struct soap *soap = (struct soap *)arg;
  pthread_detach(pthread_self());
  soap_serve(soap);
  soap_destroy(soap);
  soap_end(soap);
  soap_free(soap);
  sem_post(&slots);
  return NULL;
}

int main(int argc, char **argv)
{
  int port = argc > 1 ? atoi(argv[1]) : 18081;
  struct soap *soap = soap_new1(SOAP_IO_KEEPALIVE);
  sem_init(&slots, 0, MAX_THR);
  soap_register_plugin(soap, soap_wsa);
  soap->bind_flags = SO_REUSEADDR;
  soap->max_keep_alive = 1000000;
  if (!soap_valid_socket(soap_bind(soap, "127.0.0.1", port, 256))) {
    soap_print_fault(soap, stderr);
    return 1;
  }
  fprintf(stderr, "gsoap-bench listening on 127.0.0.1:%d\n", port);
  for (;;) {
    if (!soap_valid_socket(soap_accept(soap)))
      continue;
    sem_wait(&slots);
    struct soap *tsoap = soap_copy(soap);
    pthread_t tid;
    if (!tsoap || pthread_create(&tid, NULL, serve, tsoap)) {
      if (tsoap) soap_free(tsoap);
      sem_post(&slots);
    }
  }
  return 0;
}
EOF
echo "== building the gSOAP baseline in $TMP/gsoap"
(
  cd "$TMP/gsoap"
  soapcpp2 -c -S -L -x -I"$GSOAP_SHARE/import" bench.h >soapcpp2.log 2>&1 || { cat soapcpp2.log; exit 1; }
  cp "$GSOAP_SHARE/plugin/wsaapi.c" "$GSOAP_SHARE/plugin/wsaapi.h" .
  gcc -O2 -o gsoap-bench -I. -I"$GSOAP_SHARE" server.c soapC.c soapServer.c wsaapi.c -lgsoap -lpthread
)

# ---------------------------------------------------------------- vcds
if [ ! -x "$VCDS_BIN" ]; then
  echo "== $VCDS_BIN missing: cargo build --release -p vcds"
  (cd "$ROOT" && cargo build --release -p vcds)
fi

GPORT="$(free_port)"
"$TMP/gsoap/gsoap-bench" "$GPORT" >"$TMP/gsoap.log" 2>&1 &
PIDS+=($!); wait_port "$GPORT" "$!" gsoap
VPORT="$(free_port)"
mkdir -p "$TMP/data"
RUST_LOG="${RUST_LOG:-warn}" "$VCDS_BIN" serve --listen "127.0.0.1:$VPORT" --data-dir "$TMP/data" >"$TMP/vcds.log" 2>&1 &
PIDS+=($!); wait_port "$VPORT" "$!" vcds

NS='xmlns:env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:wsrf-rp="http://docs.oasis-open.org/wsrf/rp-2" xmlns:api="http://www.gridforum.org/cddlm/deployapi/2005/02" xmlns:vcds="urn:vcds:2026"'
soap11() { # url action header-extra body -> response on stdout
  curl -sS --max-time 30 -H 'Content-Type: text/xml; charset=utf-8' -H "SOAPAction: \"$2\"" --data-binary @- "$1" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope $NS><env:Header><wsa:To>$1</wsa:To><wsa:Action>$2</wsa:Action><wsa:MessageID>urn:uuid:$(python3 -c 'import uuid;print(uuid.uuid4())')</wsa:MessageID><wsa:ReplyTo><wsa:Address>http://www.w3.org/2005/08/addressing/anonymous</wsa:Address></wsa:ReplyTo>$3</env:Header><env:Body>$4</env:Body></env:Envelope>
EOF
}
VBASE="http://127.0.0.1:$VPORT/wsrf/services"
echo "== creating a System on vcds (127.0.0.1:$VPORT)"
soap11 "$VBASE/Portal" "http://www.gridforum.org/cddlm/deployapi/2005/02/wsdl/PortalEPR/CreateRequest" "" \
  "<api:createRequest/>" >"$TMP/create.xml"
RID="$(xmllint --xpath "string(//*[local-name()='systemReference']/*[local-name()='ReferenceParameters']/*[local-name()='ResourceId'])" "$TMP/create.xml" 2>/dev/null || true)"
[ -n "$RID" ] || { echo "Create failed:" >&2; cat "$TMP/create.xml" >&2; exit 1; }
RIDH="<vcds:ResourceId wsa:IsReferenceParameter=\"true\">$RID</vcds:ResourceId>"
soap11 "$VBASE/System" "http://docs.oasis-open.org/wsrf/rpw-2/SetResourceProperties/SetResourcePropertiesRequest" "$RIDH" \
  "<wsrf-rp:SetResourceProperties><wsrf-rp:Update><vcds:Description>bench</vcds:Description></wsrf-rp:Update></wsrf-rp:SetResourceProperties>" >"$TMP/set.xml"
grep -q 'SetResourcePropertiesResponse' "$TMP/set.xml" || { echo "SetResourceProperties failed:" >&2; cat "$TMP/set.xml" >&2; exit 1; }

# the request both servers get (same bytes, same MessageID)
GRP_ACTION="http://docs.oasis-open.org/wsrf/rpw-2/GetResourceProperty/GetResourcePropertyRequest"
cat >"$TMP/request.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope $NS><env:Header><wsa:To>$VBASE/System</wsa:To><wsa:Action>$GRP_ACTION</wsa:Action><wsa:MessageID>urn:uuid:6b29fc40-ca47-4067-b31d-00dd010662da</wsa:MessageID><wsa:ReplyTo><wsa:Address>http://www.w3.org/2005/08/addressing/anonymous</wsa:Address></wsa:ReplyTo>$RIDH</env:Header><env:Body><wsrf-rp:GetResourceProperty>vcds:Description</wsrf-rp:GetResourceProperty></env:Body></env:Envelope>
EOF
cat >"$TMP/post.lua" <<'EOF'
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "text/xml; charset=utf-8"
wrk.headers["SOAPAction"] = '"' .. os.getenv("BENCH_ACTION") .. '"'
dofile(os.getenv("WRK_REPORT"))
EOF
check_one() { # name url
  local out
  out="$(curl -sS --max-time 10 -w '\nHTTP %{http_code}' -H 'Content-Type: text/xml; charset=utf-8' \
         -H "SOAPAction: \"$GRP_ACTION\"" --data-binary @"$TMP/request.xml" "$2")"
  if ! grep -q 'HTTP 200' <<<"$out" || ! grep -qE '>bench</([A-Za-z_][A-Za-z0-9_.-]*:)?Description>' <<<"$out"; then
    echo "$1 does not answer the benchmark request correctly:" >&2; echo "$out" >&2; exit 1
  fi
}
check_one gSOAP "http://127.0.0.1:$GPORT/wsrf/services/System"
check_one vcds "$VBASE/System"

run_wrk() { # name url
  if [ "$WARMUP" != 0 ]; then
    WRK_REPORT="$ROOT/bench/wrk-report.lua" BENCH_BODY="$TMP/request.xml" BENCH_ACTION="$GRP_ACTION" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" \
      -s "$TMP/post.lua" "$2" >/dev/null 2>&1 || true
  fi
  echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION  $1  $2" >&2
  WRK_REPORT="$ROOT/bench/wrk-report.lua" BENCH_BODY="$TMP/request.xml" BENCH_ACTION="$GRP_ACTION" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" \
    -s "$TMP/post.lua" "$2" | tee "$TMP/wrk-$1.txt" | grep '^RESULT' || { cat "$TMP/wrk-$1.txt" >&2; exit 1; }
}
G="$(run_wrk gsoap "http://127.0.0.1:$GPORT/wsrf/services/System")"
V="$(run_wrk vcds "$VBASE/System")"
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
GR="$(field "$G" rps)"; VR="$(field "$V" rps)"
GP="$(field "$G" p99_ms)"; VP="$(field "$V" p99_ms)"
echo
echo "SOAP 1.1 GetResourceProperty(vcds:Description), wrk -t$THREADS -c$CONNECTIONS -d$DURATION, 127.0.0.1, $(nproc) cores"
printf '%-8s %12s %10s %10s %8s %8s\n' server 'requests/s' 'p50 ms' 'p99 ms' non2xx sockerr
printf '%-8s %12s %10s %10s %8s %8s\n' gSOAP "$GR" "$(field "$G" p50_ms)" "$GP" "$(field "$G" non2xx)" "$(field "$G" socket_errors)"
printf '%-8s %12s %10s %10s %8s %8s\n' vcds "$VR" "$(field "$V" p50_ms)" "$VP" "$(field "$V" non2xx)" "$(field "$V" socket_errors)"
python3 -c "import sys; g,v,gp,vp=map(float,sys.argv[1:]); print('ratio vcds/gSOAP: throughput %.2f, p99 latency %.2f' % (v/g, vp/gp if gp else float('nan')))" "$GR" "$VR" "$GP" "$VP"
echo "re-run: $RERUN"
