#!/usr/bin/env bash
# Makes a throw-away grid PKI for vcds tests with the openssl CLI:
#   OUTDIR/trust/<hash>.0, <hash>.r0   trust-roots dir in /etc/grid-security/certificates layout
#   OUTDIR/ca.pem, OUTDIR/ca.crl.pem   the same CA certificate and CRL under plain names
#   OUTDIR/server.{pem,key}            server cert for 127.0.0.1 / localhost
#   OUTDIR/<name>.{pem,key}            alice bob admin mallory (valid; mallory is not in the
#                                      grid-mapfile), expired, revoked, rogue (issued by an
#                                      untrusted CA with alice's DN)
#   OUTDIR/alice-proxy.pem             RFC 3820 proxy of alice (cert, key, alice's cert)
#   OUTDIR/alice-proxy2.pem            RFC 3820 proxy of that proxy (cert, key, proxy, alice)
#   OUTDIR/alice-pathlen0.pem          RFC 3820 proxy with pathlen 0 (cert, key, alice)
#   OUTDIR/alice-toodeep.pem           proxy of alice-pathlen0, so violating its path length
#   OUTDIR/alice-limited.pem           Globus limited proxy (RFC 3820 form) of alice
#   OUTDIR/alice-legacy.pem            legacy Globus proxy "CN=proxy" (cert, key, alice)
#   OUTDIR/grid-mapfile, OUTDIR/admins
#   OUTDIR/refused                     the credentials a server must refuse in the handshake,
#                                      each with the TLS 1.2 alert it sends ("-": no certificate)
# Usage: make-test-ca.sh OUTDIR   (OUTDIR is created; existing files are overwritten)
set -euo pipefail
umask 077  # keys and proxies are private, as Globus tools insist
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
out=$1
base="/C=US/O=Grid/OU=vcds-test"
mkdir -p "$out/trust" "$out/work"
cd "$out"

# EC keys: generating a dozen RSA keys would take seconds.
newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# A minimal `openssl ca` setup; `ca` (not `x509 -req`) because it can back-date validity for the
# expired cert and keeps the index the CRL is generated from.
mkca() { # dir subject
  local d=$1
  mkdir -p "$d/newcerts"
  : >"$d/index.txt"
  echo 1000 >"$d/serial"
  echo 1000 >"$d/crlnumber"
  cat >"$d/ca.cnf" <<EOF
[ca]
default_ca = this
[this]
dir = $d
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
serial = \$dir/serial
crlnumber = \$dir/crlnumber
certificate = \$dir/ca.pem
private_key = \$dir/ca.key
default_md = sha256
default_days = 3650
default_crl_days = 3650
policy = any
unique_subject = no
email_in_dn = no
[any]
countryName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied
[ca_ext]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[user]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[server]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
  newkey "$d/ca.key"
  openssl req -new -x509 -key "$d/ca.key" -subj "$2" -days 3650 -config "$d/ca.cnf" \
    -extensions ca_ext -out "$d/ca.pem"
}

issue() { # cadir name subject extensions [extra openssl-ca args...]
  local d=$1 name=$2 subj=$3 ext=$4
  shift 4
  newkey "$name.key"
  openssl req -new -key "$name.key" -subj "$subj" -out "work/$name.csr"
  openssl ca -batch -notext -config "$d/ca.cnf" -extensions "$ext" -in "work/$name.csr" \
    -out "$name.pem" "$@" 2>/dev/null
}

# Proxies are signed by the user's own key, as grid-proxy-init does; `x509 -req` does not insist
# that the issuer be a CA.
proxy() { # issuer-name issuer-chain-file name cn serial proxyCertInfo
  local iss=$1 chain=$2 name=$3 cn=$4 serial=$5 pci=$6
  local subj
  subj=$(openssl x509 -in "$iss.pem" -noout -subject -nameopt compat | sed 's/^subject=//')
  newkey "work/$name.key"
  openssl req -new -key "work/$name.key" -subj "$subj/CN=$cn" -out "work/$name.csr"
  if [ -n "$pci" ]; then
    printf 'keyUsage = critical,digitalSignature,keyEncipherment\nproxyCertInfo = %s\n' "$pci" \
      >"work/$name.ext"
  else
    printf 'keyUsage = critical,digitalSignature,keyEncipherment\n' >"work/$name.ext"
  fi
  openssl x509 -req -in "work/$name.csr" -CA "$iss.pem" -CAkey "$iss.key" -set_serial "$serial" \
    -days 1 -extfile "work/$name.ext" -out "work/$name.crt" 2>/dev/null
  # Globus proxy file layout: proxy cert, its key, then the issuing chain.
  cat "work/$name.crt" "work/$name.key" "$chain" >"$name.pem"
  cp "work/$name.key" "$name.key"
}

mkca "$PWD/work/ca" "$base/CN=vcds Test CA"
mkca "$PWD/work/rogue-ca" "/C=US/O=Rogue/CN=Rogue CA"

issue work/ca server "$base/CN=localhost" server
for who in alice bob admin mallory revoked; do
  issue work/ca "$who" "$base/CN=${who^}" user
done
issue work/ca expired "$base/CN=Expired" user -startdate 20200101000000Z -enddate 20200102000000Z
issue work/rogue-ca rogue "$base/CN=Alice" user

openssl ca -batch -config work/ca/ca.cnf -revoke revoked.pem 2>/dev/null
openssl ca -batch -config work/ca/ca.cnf -gencrl -out ca.crl.pem 2>/dev/null
cp work/ca/ca.pem ca.pem
hash=$(openssl x509 -in ca.pem -noout -hash)
cp ca.pem "trust/$hash.0"
cp ca.crl.pem "trust/$hash.r0"
# Globus dirs also hold signing policies; the loader must skip what it does not understand.
printf "access_id_CA X509 '%s/CN=vcds Test CA'\n" "$base" >"trust/$hash.signing_policy"

proxy alice alice.pem alice-proxy 1001 1001 "critical,language:id-ppl-inheritAll"
cat work/alice-proxy.crt alice.pem >work/alice-proxy.chain
proxy alice-proxy work/alice-proxy.chain alice-proxy2 1002 1002 "critical,language:id-ppl-inheritAll"
proxy alice alice.pem alice-pathlen0 1003 1003 "critical,language:id-ppl-inheritAll,pathlen:0"
cat work/alice-pathlen0.crt alice.pem >work/alice-pathlen0.chain
proxy alice-pathlen0 work/alice-pathlen0.chain alice-toodeep 1005 1005 "critical,language:id-ppl-inheritAll"
# Globus' limited-proxy policy language (1.3.6.1.4.1.3536.1.1.1.9).
proxy alice alice.pem alice-limited 1006 1006 "critical,language:1.3.6.1.4.1.3536.1.1.1.9"
proxy alice alice.pem alice-legacy proxy 1004 ""

cat >grid-mapfile <<EOF
# vcds test grid-mapfile: quoted DN, then local account(s), the first is the default.
"$base/CN=Alice" alice
"$base/CN=Bob" bob,bob2
"$base/CN=Admin" vcdsadmin
"$base/CN=Expired" expired
"$base/CN=Revoked" revoked
EOF
cat >admins <<EOF
# vcds administrators: one DN or local account per line.
"$base/CN=Admin"
EOF
cat >refused <<EOF
# Client credentials a vcds server refuses in the TLS handshake, and the TLS 1.2 alert it sends:
# untrusted CA (even with alice's DN), expired, revoked, proxy path length exceeded, a legacy
# Globus proxy (OpenSSL verifies only RFC 3820 proxies), a server certificate (not for client
# authentication), no certificate at all.
rogue.pem          unknown ca
expired.pem        certificate expired
revoked.pem        certificate revoked
alice-toodeep.pem  certificate unknown
alice-legacy.pem   unknown ca
server.pem         unsupported certificate
-                  handshake failure
EOF
