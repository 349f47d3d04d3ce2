# bench/cascade/plot.gp - draws bench/cascade/run.sh's CSVs (docs/cascade.md).
# gnuplot -e "curve='cascade_curve.csv'; gateway='cascade_gateway.csv'; out='cascade.png'" plot.gp
# (gateway may be '': the gateway's measured points are then left out)
#
# cascade_curve.csv:   1 target_share_local 2 threshold 3 share_local 4 accuracy 5 cost_usd
#   6 cloud_only_cost_usd 7 savings_pct 8 random_accuracy 9 random_cost_usd
#   10 random_savings_pct 11 random_accuracy_same_cost 12 oracle_accuracy 13 pgr ...
# cascade_gateway.csv: 1 target_share_local 2 threshold 3 requests 4 share_local 5 accuracy
#   6 cost_usd 7 cloud_only_cost_usd 8 savings_pct 9 random_accuracy ...

if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {
    set terminal pngcairo size 1200,520 font 'sans,10'
} else {
    set terminal png size 1200,520
}
set output out
set datafile separator ','
set key autotitle columnhead
set grid
set multiplot layout 1,2 title "Hearth cascade: learned router on RouteLLM's held-out MMLU + GSM8K prompts (local = Mixtral-8x7B, cloud = GPT-4 outcomes)"

set title 'Cost versus quality'
set xlabel 'cost, % of sending everything to the cloud'
set ylabel 'accuracy (%)'
set xrange [0:100]
set key bottom right
set offsets 0, 0, 1.5, 0
has_gw = strlen(gateway) > 0
gw_title = ''  # no key entry without gateway points
gw_title2 = ''
if (has_gw) {
    # the sample's own local-only and cloud-only accuracy (random router at 100 % / 0 % local)
    stats gateway using 3 nooutput
    gw_n = STATS_max
    stats gateway using 9 nooutput
    gw_title = sprintf('through the gateway: sample of %d (tiers %.1f / %.1f %%)', gw_n, 100 * STATS_min, 100 * STATS_max)
    gw_title2 = 'accuracy, through the gateway (sample)'
}
plot curve using (100 - $7):(100 * $4) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#1f77b4' title 'Hearth router (all held-out prompts)', \
     curve using (100 - $10):(100 * $8) with lines lw 1.5 dt 2 lc rgb '#7f7f7f' title 'random router', \
     (has_gw ? gateway : curve) using (has_gw ? 100 - $8 : NaN):(100 * $5) with points pt 6 ps 1.2 lc rgb '#d62728' title gw_title, \
     curve using (100 - $7):(100 * $4):(sprintf('%.0f%% local', 100 * $3)) every 4 with labels offset 0,1 font ',8' notitle

set title 'By share of requests kept local'
set xlabel 'requests kept local (%)'
set ylabel 'accuracy (%)'
set y2label 'savings against cloud-only (%)'
set y2range [0:100]
set y2tics
set ytics nomirror
set key at graph 0.26, graph 0.99 left top Left reverse
set offsets 0, 0, 1.5, 0
plot curve using (100 * $3):(100 * $4) with linespoints lw 2 pt 7 ps 0.6 lc rgb '#1f77b4' title 'accuracy, Hearth router', \
     curve using (100 * $3):(100 * $8) with lines lw 1.5 dt 2 lc rgb '#7f7f7f' title 'accuracy, random router', \
     (has_gw ? gateway : curve) using (has_gw ? 100 * $4 : NaN):(100 * $5) with points pt 6 ps 1.2 lc rgb '#d62728' title gw_title2, \
     curve using (100 * $3):7 axes x1y2 with lines lw 2 lc rgb '#2ca02c' title 'savings, Hearth router'
unset multiplot
