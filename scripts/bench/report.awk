# The results of the scale runner (run-scale.sh), in POSIX awk: the machine it
# runs on may have no python.
#
#   awk -f report.awk -v json=OUT.json FACTS > OUT.txt
#
# FACTS holds the lines lib.sh and run-scale.sh write (the same format
# report.py reads for scripts/bench.sh; see its docstring):
#   meta KEY VALUE...
#   run SCENARIO CONTENDER ROUND PROXY_TICKS BACKEND_ACCEPTS REDIS_TICKS
#       RPS P50_MS P99_MS REQUESTS NON2XX SOCKET_ERRORS
#   mem NAME HWM_KB RSS_KB
#   problem TEXT...
# Scenarios: scale_wW (cookie read path, W workers; contenders nginx, cookie,
# redis) and sweep_wW_cN (N client connections). Per scenario and contender:
# medians over rounds of req/s and p99; CPU and upstream connections per
# request as sums over the rounds divided by their requests. Every ratio is to
# nginx in the same scenario. The bars are reported, never asserted.

function label(c) {
  if (c == "nginx") return "nginx proxy_pass"
  if (c == "cookie") return "sessiond cookie"
  if (c == "redis") return "sessiond redis"
  if (c == "redis_cluster") return "sessiond redis cluster"
  return c
}

# median of the n values v[k, 1..n] ("" when there are none)
function median(v, k, n,   a, i, j, t, m) {
  m = 0
  for (i = 1; i <= n; i++) if (v[k, i] != "-") a[++m] = v[k, i] + 0
  if (m == 0) return ""
  for (i = 2; i <= m; i++) {
    t = a[i]
    for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]
    a[j + 1] = t
  }
  return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}

function div(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "" : a / b }
function f(v, fmt) { return v == "" ? "n/a" : sprintf(fmt, v) }
function fx(v) { return v == "" ? "" : sprintf("%.2fx", v) }
function jnum(v) { return v == "" ? "null" : sprintf("%.6g", v) }
function jstr(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/\t/, " ", s); return "\"" s "\"" }

function value_text(v) {
  if (v == "") return "n/a"
  if (v == 0) return "0"
  if (v < 0.1 && v > -0.1) return sprintf("%.4f", v)
  return sprintf("%.2f", v)
}

function add_bar(name, v, op, limit, note,   verdict) {
  if (v == "") verdict = "n/a"
  else if (op == ">=") verdict = (v + 0 >= limit) ? "PASS" : "FAIL"
  else verdict = (v + 0 <= limit) ? "PASS" : "FAIL"
  nbars++
  bname[nbars] = name; bval[nbars] = v; bop[nbars] = op; blim[nbars] = limit
  bverdict[nbars] = verdict; bnote[nbars] = note
}

$1 == "meta" {
  v = $0
  sub(/^meta [^ ]+ /, "", v)
  meta[$2] = v
  if (!($2 in meta_seen)) { meta_seen[$2] = 1; meta_order[++nmeta] = $2 }
  next
}
$1 == "run" && NF == 13 {
  k = $2 SUBSEP $3
  if (!(k in rounds)) {
    if (!($2 in scen_seen)) { scen_seen[$2] = 1; scen[++nscen] = $2 }
    rounds[k] = 0
  }
  n = ++rounds[k]
  rps[k, n] = $8; p99[k, n] = $10
  if ($11 != "-") {
    req = $11 + 0
    requests[k] += req
    if ($5 != "-") { ticks[k] += $5; ticks_req[k] += req }
    if ($6 != "-") { accepts[k] += $6; accepts_req[k] += req }
    if ($7 != "-") { redis_ticks[k] += $7; redis_req[k] += req }
  }
  non2xx[k] += $12; sockerr[k] += $13
  next
}
$1 == "mem" && NF == 4 { mem_name[++nmem] = $2; mem_hwm[nmem] = $3; mem_rss[nmem] = $4; next }
$1 == "problem" { v = $0; sub(/^problem /, "", v); problems[++nproblems] = v; next }

END {
  us = 1000000 / (meta["clk_tck"] ? meta["clk_tck"] : 100)
  ncont = split("nginx cookie redis redis_cluster", conts, " ")
  for (s = 1; s <= nscen; s++) {
    for (c = 1; c <= ncont; c++) {
      k = scen[s] SUBSEP conts[c]
      if (!(k in rounds)) continue
      m_rps[k] = median(rps, k, rounds[k])
      m_p99[k] = median(p99, k, rounds[k])
      cpu[k] = div(ticks[k] * us, ticks_req[k])
      upstream[k] = (k in accepts_req) ? div(accepts[k], accepts_req[k]) : ""
      rcpu[k] = (k in redis_req) ? div(redis_ticks[k] * us, redis_req[k]) : ""
    }
    for (c = 1; c <= ncont; c++) {
      k = scen[s] SUBSEP conts[c]
      a = scen[s] SUBSEP "nginx"
      if (!(k in rounds)) continue
      x_rps[k] = div(m_rps[k], m_rps[a]); x_p99[k] = div(m_p99[k], m_p99[a]); x_cpu[k] = div(cpu[k], cpu[a])
    }
  }

  pinned = (meta["pinned"] == 1)
  print "sessiond scale benchmark: every ratio (x) is to nginx proxy_pass with as many workers, same run"
  print meta["sessiond"] "; " meta["nginx"] "; " meta["machine"]
  print meta["layout"]
  if ("affinity_backend" in meta)
    print "affinity (from /proc): backend " meta["affinity_backend"] ", redis-server " \
          (("affinity_redis" in meta) ? meta["affinity_redis"] : "-") ", proxies " \
          (("affinity_sessiond_w" meta["sweep_workers"] in meta) ? meta["affinity_sessiond_w" meta["sweep_workers"]] : "-")
  printf "wrk -t%s keep-alive, %ss runs, %s round(s) (medians) at %s connections; backend %s worker(s);" \
         " nginx keepalive %s\n", meta["wrk_threads"], meta["seconds"], meta["rounds"], meta["connections"],
         meta["backend_workers"], meta["nginx_keepalive"]
  print "CPU: utime+stime of the proxy under test per request (sessiond; nginx master and workers);"
  print "upstream: connections the backend accepted during the run per request (its stub_status)"
  hdr = "%-7s %-6s %-18s %9s %6s %8s %6s %7s %6s %10s %9s %7s %7s\n"
  printf "\n" hdr, "workers", "conns", "contender", "req/s", "x", "p99 ms", "x", "CPU us", "x", "upstream/r",
         "redis us", "non-2xx", "sockerr"
  for (pass = 1; pass <= 3; pass++) {
    if (pass == 2) print "sweep"
    if (pass == 3) print "redis: one redis-server against a Redis Cluster of three masters (write, then read path)"
    for (s = 1; s <= nscen; s++) {
      name = scen[s]
      if (pass == 1 && name !~ /^scale_w/) continue
      if (pass == 2 && name !~ /^sweep_w/) continue
      if (pass == 3 && name !~ /^scale_redis_/) continue
      w = name; sub(/^(scale|sweep|scale_redis_write|scale_redis_read)_w/, "", w); sub(/_.*/, "", w)
      cn = (pass == 2) ? name : meta["connections"]
      if (pass == 2) sub(/^.*_c/, "", cn)
      for (c = 1; c <= ncont; c++) {
        k = name SUBSEP conts[c]
        if (!(k in rounds)) continue
        printf hdr, w, cn, label(conts[c]), f(m_rps[k], "%.0f"), fx(x_rps[k]), f(m_p99[k], "%.2f"),
               fx(x_p99[k]), f(cpu[k], "%.1f"), fx(x_cpu[k]), f(upstream[k], "%.4f"),
               (conts[c] ~ /^redis/ ? f(rcpu[k], "%.1f") : ""), non2xx[k], sockerr[k]
      }
    }
  }
  if (nmem) {
    print ""
    for (i = 1; i <= nmem; i++)
      printf "sessiond %s after its step: RSS %.1f MiB, peak %.1f MiB\n", mem_name[i], mem_rss[i] / 1024,
             mem_hwm[i] / 1024
  }

  # The bars the 16-core rows of the core rebuild's table stand for.
  note = pinned ? "" : "unpinned, " meta["cpus"] " CPUs: not the 16-core setup"
  k = "scale_w1" SUBSEP "cookie"
  add_bar("1 worker: cookie read req/s (x nginx)", x_rps[k], ">=", 1.0, note)
  k = "scale_w4" SUBSEP "cookie"
  add_bar("4 workers, 16 cores: cookie read req/s (x nginx)", x_rps[k], ">=", 1.0, note)
  add_bar("4 workers, 16 cores: CPU time/request (x nginx)", x_cpu[k], "<=", 1.0, note)
  k = "scale_w4" SUBSEP "redis"
  add_bar("4 workers: redis read req/s (x nginx)", x_rps[k], ">=", 0.9, note)
  worst = ""
  for (i = 1; i <= 2; i++) {
    n = (i == 1) ? 1000 : 2000
    k = "sweep_w4_c" n SUBSEP "cookie"
    add_bar(sprintf("%d,000 connections, 4 workers: req/s (x nginx)", n / 1000), x_rps[k], ">=", 1.0, note)
    add_bar(sprintf("%d,000 connections, 4 workers: p99 (x nginx)", n / 1000), x_p99[k], "<=", 1.0, note)
  }
  for (s = 1; s <= nscen; s++) {
    if (scen[s] !~ /^sweep_w[0-9]+_c(1000|2000)$/) continue
    k = scen[s] SUBSEP "cookie"
    if ((k in upstream) && upstream[k] != "" && (worst == "" || upstream[k] > worst)) {
      worst = upstream[k]; worst_at = scen[s]
    }
  }
  add_bar("new upstream connections/request, 1,000 and 2,000 conns", worst, "<=", 0.001,
          worst == "" ? "" : "worst: " worst_at)
  for (s = 1; s <= nscen; s++) {
    if (scen[s] !~ /^scale_redis_(write|read)_w/) continue
    one = scen[s] SUBSEP "redis"; three = scen[s] SUBSEP "redis_cluster"
    if (scen[s] ~ /write/)
      add_bar("redis write path, 3-master cluster (x one Redis)", div(m_rps[three], m_rps[one]), ">=", 2.5,
              note == "" ? "Redis the bottleneck of one" : note)
    else
      add_bar("redis read path, 3-master cluster (x one Redis)", div(m_rps[three], m_rps[one]), ">=", 0.95, note)
  }
  print ""
  print "bars (the core rebuild's 16-core rows; ratios to nginx proxy_pass in this run)"
  for (i = 1; i <= nbars; i++)
    printf "  [%-4s] %-56s %8s  (%s %g)%s\n", bverdict[i], bname[i], value_text(bval[i]), bop[i], blim[i],
           bnote[i] == "" ? "" : "  " bnote[i]

  bad = 0
  for (s = 1; s <= nscen; s++)
    for (c = 1; c <= ncont; c++) {
      k = scen[s] SUBSEP conts[c]
      if ((k in rounds) && (non2xx[k] + sockerr[k] > 0)) bad++
    }
  if (bad || nproblems) {
    print ""
    print "problems"
    for (s = 1; s <= nscen; s++)
      for (c = 1; c <= ncont; c++) {
        k = scen[s] SUBSEP conts[c]
        if ((k in rounds) && (non2xx[k] + sockerr[k] > 0))
          printf "  %s / %s: %d non-2xx responses, %d socket errors over %d requests\n", scen[s],
                 label(conts[c]), non2xx[k], sockerr[k], requests[k]
      }
    for (i = 1; i <= nproblems; i++) print "  " problems[i]
  }

  if (json == "") exit 0
  printf "{\n  \"meta\": {" > json
  for (i = 1; i <= nmeta; i++)
    printf "%s\n    %s: %s", (i > 1 ? "," : ""), jstr(meta_order[i]), jstr(meta[meta_order[i]]) > json
  printf "\n  },\n  \"results\": [" > json
  sep = ""
  for (s = 1; s <= nscen; s++)
    for (c = 1; c <= ncont; c++) {
      k = scen[s] SUBSEP conts[c]
      if (!(k in rounds)) continue
      printf "%s\n    {\"scenario\": %s, \"contender\": %s, \"rounds\": %d, \"requests\": %d, " \
             "\"rps\": %s, \"rps_x_nginx\": %s, \"p99_ms\": %s, \"p99_ms_x_nginx\": %s, " \
             "\"cpu_us_per_request\": %s, \"cpu_us_per_request_x_nginx\": %s, " \
             "\"new_upstream_per_request\": %s, \"redis_cpu_us_per_request\": %s, " \
             "\"non2xx\": %d, \"socket_errors\": %d}", sep, jstr(scen[s]), jstr(conts[c]), rounds[k],
             requests[k], jnum(m_rps[k]), jnum(x_rps[k]), jnum(m_p99[k]), jnum(x_p99[k]), jnum(cpu[k]),
             jnum(x_cpu[k]), jnum(upstream[k]), jnum(rcpu[k]), non2xx[k], sockerr[k] > json
      sep = ","
    }
  printf "\n  ],\n  \"memory_kb\": {" > json
  for (i = 1; i <= nmem; i++)
    printf "%s\n    %s: {\"hwm_kb\": %d, \"rss_kb\": %d}", (i > 1 ? "," : ""), jstr(mem_name[i]), mem_hwm[i],
           mem_rss[i] > json
  printf "\n  },\n  \"bars\": [" > json
  for (i = 1; i <= nbars; i++)
    printf "%s\n    {\"bar\": %s, \"value\": %s, \"op\": %s, \"limit\": %s, \"verdict\": %s, \"note\": %s}",
           (i > 1 ? "," : ""), jstr(bname[i]), jnum(bval[i]), jstr(bop[i]), jnum(blim[i]), jstr(bverdict[i]),
           jstr(bnote[i]) > json
  printf "\n  ],\n  \"problems\": [" > json
  for (i = 1; i <= nproblems; i++) printf "%s\n    %s", (i > 1 ? "," : ""), jstr(problems[i]) > json
  printf "\n  ]\n}\n" > json
  close(json)
}
