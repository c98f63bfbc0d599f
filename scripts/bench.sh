#!/usr/bin/env bash
# make bench: Go benchmarks, reported as ratios against baselines measured
# in the same run. Writes bench/results.md and bench/results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=1
out=$(mktemp)
go test -run '^$' -bench . -benchmem -benchtime "${BENCHTIME:-1s}" -count "${COUNT:-3}" ./recorder | tee "$out" | grep -E '^Benchmark' >&2
go test -run '^$' -bench Bulk -benchmem -benchtime "${BULKTIME:-3x}" -count "${COUNT:-3}" ./gateway | tee -a "$out" | grep -E '^Benchmark' >&2
# Median MB/s and allocs/op of each benchmark over the runs.
awk '
/^Benchmark/ {
  name=$1; sub(/-[0-9]+$/, "", name)
  for (i=2;i<=NF;i++) { if ($(i+1)=="MB/s") mbs[name]=mbs[name] " " $i; if ($(i+1)=="allocs/op") al[name]=$i }
}
function median(s,   a,n,i,j,t) { n=split(s,a," "); for(i=1;i<=n;i++)for(j=i+1;j<=n;j++)if(a[j]+0<a[i]+0){t=a[i];a[i]=a[j];a[j]=t}; return a[int((n+1)/2)] }
END {
  base=median(mbs["BenchmarkAESCTR"]); gz=median(mbs["BenchmarkGzipStored"])
  date=strftime("%Y-%m-%d", systime())
  print "| benchmark | MB/s | baseline | ratio | allocs/op |" > "bench/results.md"
  print "|---|---:|---|---:|---:|" >> "bench/results.md"
  printf "{\"date\": \"%s\", \"results\": [", date > "bench/results.json"
  n=split("BenchmarkRecorderLog BenchmarkRecorderText BenchmarkRecorderBinary BenchmarkRecorderKeystroke BenchmarkGzipHuffmanOnly BenchmarkGzipBestSpeed BenchmarkBulkRecordingOn", names, " ")
  bulk=median(mbs["BenchmarkBulkRecordingOff"])
  for (k=1;k<=n;k++) {
    b=names[k]; v=median(mbs[b]); ref="BenchmarkAESCTR"; r=base
    if (b ~ /Gzip/) { ref="BenchmarkGzipStored"; r=gz }
    if (b ~ /Bulk/) { ref="BenchmarkBulkRecordingOff"; r=bulk }
    printf "| %s | %.0f | %s (%.0f) | %.3f | %s |\n", b, v, ref, r, v/r, al[b] >> "bench/results.md"
    printf "%s{\"name\": \"%s\", \"mb_per_s\": %.1f, \"baseline\": \"%s\", \"baseline_mb_per_s\": %.1f, \"ratio\": %.4f, \"allocs_per_op\": %s}", (k>1?", ":""), b, v, ref, r, v/r, al[b] >> "bench/results.json"
  }
  print "]}" >> "bench/results.json"
}' "$out"
rm -f "$out"
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(go version | cut -d' ' -f3)"
cat bench/results.md
