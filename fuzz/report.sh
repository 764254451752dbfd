#!/bin/bash
# Prints a Markdown table of the last campaign from fuzz/logs/<target>.log:
# seconds, executions, final cov/ft, crashes (files in artifacts/).
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
echo "| target | seconds | executions | exec/s | cov | ft | peak RSS | crashes |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for log in logs/*.log; do
    t=$(basename "$log" .log)
    case $t in build|campaign*) continue ;; esac
    done_line=$(grep -a 'Done [0-9]* runs in' "$log" | tail -n 1)
    last=$(grep -a -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
    [ -n "$last" ] || continue
    if [ -n "$done_line" ]; then
        runs=$(echo "$done_line" | awk '{print $2}')
        secs=$(echo "$done_line" | awk '{print $5}')
    else
        # Stopped early (a crash, or killed): the last status line.
        runs=$(echo "$last" | sed 's/^#\([0-9]*\).*/\1/')
        secs="stopped"
    fi
    cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    eps=$(grep -a 'average_exec_per_sec' "$log" | awk '{print $2}')
    eps=${eps:-?}
    rss=$(grep -a 'peak_rss_mb' "$log" | awk '{print $2}')
    rss=${rss:-?}
    crashes=$(ls artifacts 2>/dev/null | grep -c "^$t-" || true)
    echo "| \`$t\` | $secs | $runs | $eps | $cov | $ft | ${rss} MB | $crashes |"
done
