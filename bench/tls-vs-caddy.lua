-- wrk script for bench/tls-vs-caddy.sh.
--
--   wrk ... -s bench/tls-vs-caddy.lua https://bench.test:PORT/PATH
--
-- wrk takes the TLS server name (SNI) and the Host header from the URL's
-- host, and resolves that host with getaddrinfo; bench.test resolves
-- nowhere, and wrk has no --resolve. So this script replaces wrk's
-- resolver: every connection goes to 127.0.0.1 on the URL's port, while SNI
-- and Host stay bench.test. Nothing on the machine changes (no /etc/hosts
-- line). The script defines no request() or response(), so wrk sends its
-- one pre-built request exactly as it does without a script. At the end one
-- RESULT line gives the figures the shell script tabulates.

-- Called once, before the threads start; wrk.addrs[1] is where every
-- connection goes.
function wrk.resolve(host, service)
  wrk.addrs = wrk.lookup("127.0.0.1", service)
end

-- done() prints the RESULT line; it lives beside this file.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk-result.lua")
